package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// envFlux is what a deploy needs of its environment's Flux objects: the Kustomization that
// applies the environment's directory and the GitRepository it reads. A first deploy to an
// environment without a Kustomization bootstraps both (the GitRepository only when the
// cluster has none for the environment's repository and branch), in the deploy's transaction.
type envFlux struct {
	// kust is the Kustomization row; nil until ensure creates it.
	kust *store.Resource
	// source is the GitRepository row the Kustomization reads, when fluxbridge manages it.
	source *store.Resource
	// newKust and newSource are the rows the deploy creates.
	newKust, newSource *store.NewResource
	// managed tells whether fluxbridge can apply objects in the environment's cluster; in a
	// webhook-only cluster the rows are recorded (their events settle deployments) and the
	// objects are left to people to create.
	managed bool
}

// webhookOnlyNote is the note on a bootstrap in a cluster fluxbridge cannot write to.
const webhookOnlyNote = "cluster %s is webhook only: fluxbridge recorded these objects but cannot create them there; apply them yourself (see the preview's yaml)"

// planEnvFlux works out the environment's Flux objects for a deploy to t without writing
// anything: the existing Kustomization and its source, or the ones a first deploy creates,
// shaped by the deploy template's Flux side tf (nil: fluxbridge's defaults). Objects that exist
// keep their settings: every app of the environment shares them, and the resources API changes
// them.
func (h *Handler) planEnvFlux(ctx context.Context, db store.DBTX, sc *reqScope, t *deployTarget, tf *fluxspec.Template) (*envFlux, error) {
	if tf == nil {
		tf = &fluxspec.Template{}
	}
	if gs := tf.GitRepository; gs != nil && gs.Ref != nil && gs.Ref.Branch != "" && gs.Ref.Branch != t.branch {
		return nil, errBadRequest("flux.gitRepository.ref.branch", "environment %s deploys to branch %s, so its GitRepository reads that branch, not %q; leave ref out or change the environment's gitops_config.branch",
			sc.Env.Name, t.branch, gs.Ref.Branch)
	}
	f := &envFlux{kust: t.kustomization, managed: h.checkCluster("cluster", sc.Env.Cluster) == nil}
	if f.kust != nil {
		src, err := h.kustomizationSourceRow(ctx, db, f.kust)
		f.source = src
		return f, err
	}
	src, err := h.findGitSource(ctx, db, sc, t)
	if err != nil {
		return nil, err
	}
	def := manifest.ProposedFlux()
	if src == nil {
		name := gitSourceName(sc.Project.Slug, t.repo.Name, t.branch)
		gc := fluxspec.GitRepositoryConfig{URL: t.repo.URL, Ref: &fluxspec.GitRef{Branch: t.branch}, Interval: def.GitInterval}
		tf.GitRepository.ApplyTo(&gc)
		if t.repo.CredentialRef != "" {
			gc.SecretRef = fluxspec.AuthSecretName(name)
		}
		cfg, err := validConfig(fluxspec.KindGitRepository, gc)
		if err != nil {
			return nil, err
		}
		// Project-wide: the environments that share the branch share the source.
		f.newSource = &store.NewResource{
			ProjectID: sc.Project.ID, RepositoryID: &t.repo.ID, Cluster: sc.Env.Cluster,
			Kind: fluxspec.KindGitRepository, Namespace: fluxNamespace, Name: name, Config: cfg,
		}
	} else {
		f.source = src
	}
	ref := fluxspec.SourceRef{Kind: fluxspec.KindGitRepository}
	ref.Name, ref.Namespace = f.sourceRef()
	if ref.Namespace == t.kustNamespace {
		ref.Namespace = ""
	}
	prune := def.Prune
	// Confined to the environment: kustomize-controller impersonates the environment's
	// ServiceAccount (admin in its namespaces only, made by the apply job), and an environment
	// with one namespace gets it as targetNamespace.
	kc := fluxspec.KustomizationConfig{
		SourceRef: ref, Path: t.fluxPath(), Prune: &prune, Wait: def.Wait,
		Interval: def.Interval, RetryInterval: def.RetryInterval, Timeout: def.Timeout,
		ServiceAccount: envServiceAccount(sc.Project.Slug, sc.Env.Name),
	}
	if len(t.namespaces) == 1 {
		kc.TargetNamespace = t.namespaces[0]
	}
	tf.Kustomization.ApplyTo(&kc)
	cfg, err := validConfig(fluxspec.KindKustomization, kc)
	if err != nil {
		return nil, err
	}
	if len(kc.DependsOn) > 0 { // a template's: they must be objects fluxbridge manages, without a cycle
		spec, _ := fluxspec.Decode(fluxspec.KindKustomization, cfg)
		if err := h.checkDependencies(ctx, db, sc.Env.Cluster, t.kustNamespace, t.kustName, spec); err != nil {
			return nil, renameField(err, "config.", "flux.kustomization.")
		}
	}
	f.newKust = &store.NewResource{
		ProjectID: sc.Project.ID, EnvironmentID: &sc.Env.ID, RepositoryID: &t.repo.ID, Cluster: sc.Env.Cluster,
		Kind: fluxspec.KindKustomization, Namespace: t.kustNamespace, Name: t.kustName, Config: cfg,
	}
	return f, nil
}

// sourceRef names the GitRepository the Kustomization reads: the existing row or the new one.
func (f *envFlux) sourceRef() (name, namespace string) {
	if f.source != nil {
		return f.source.Name, f.source.Namespace
	}
	return f.newSource.Name, f.newSource.Namespace
}

// ensureEnvFlux creates the planned rows in tx and returns the Kustomization and the resources whose
// apply this deploy carries: those it created, and an environment's Kustomization or source
// that was recorded before but never reached the cluster (a deploy whose push failed, say) and
// that no approval request of its own holds. With held (the deploy waits for approvals) the
// rows are created unapproved, their settings proposals that the deploy's approval makes live.
func (h *Handler) ensureEnvFlux(ctx context.Context, tx pgx.Tx, f *envFlux, held bool) ([]*store.Resource, error) {
	var carry []*store.Resource
	if f.newSource != nil {
		f.newSource.Proposed = held
		res, err := h.store.CreateResource(ctx, tx, *f.newSource)
		if c, ok := store.IsUniqueViolation(err); ok && c == "gitops_resources_cluster_kind_namespace_name_key" {
			return nil, errConflictf("repository", "cluster %s already has a GitRepository %s/%s that does not read branch %s of this repository; create the environment's Kustomization through the resources API",
				f.newSource.Cluster, f.newSource.Namespace, f.newSource.Name, f.branchOf())
		}
		if err != nil {
			return nil, err
		}
		f.source = res
		carry = append(carry, res)
	} else if f.source != nil && h.neverApplied(ctx, tx, f.source) {
		carry = append(carry, f.source)
	}
	if f.newKust != nil {
		f.newKust.Proposed = held
		res, err := h.store.CreateResource(ctx, tx, *f.newKust)
		if c, ok := store.IsUniqueViolation(err); ok && c == "gitops_resources_cluster_kind_namespace_name_key" {
			return nil, errConflictf("gitops_config.kustomization", "cluster %s already has a Kustomization %s/%s of another environment; name this environment's in gitops_config.kustomization",
				f.newKust.Cluster, f.newKust.Namespace, f.newKust.Name)
		}
		if err != nil {
			return nil, err
		}
		f.kust = res
		carry = append(carry, res)
	} else if h.neverApplied(ctx, tx, f.kust) {
		carry = append(carry, f.kust)
	}
	if !f.managed {
		return nil, nil
	}
	return carry, nil
}

// branchOf is the branch the planned GitRepository reads, for messages.
func (f *envFlux) branchOf() string {
	var c fluxspec.GitRepositoryConfig
	if f.newSource != nil && json.Unmarshal(f.newSource.Config, &c) == nil && c.Ref != nil {
		return c.Ref.Branch
	}
	return ""
}

// neverApplied tells whether res was recorded but never put into its cluster, and no approval
// request holds a change of it: its first apply is then the deploy's to carry.
func (h *Handler) neverApplied(ctx context.Context, db store.DBTX, res *store.Resource) bool {
	return res != nil && res.Approved && res.AppliedSpecVersion == 0 && h.unapplied(ctx, db, res)
}

// unapplied tells whether res has settings not yet in its cluster that no approval request
// holds (a deploy whose push failed changed them, say), so a deploy may carry their apply.
func (h *Handler) unapplied(ctx context.Context, db store.DBTX, res *store.Resource) bool {
	if !res.Approved || res.PendingRequestID != nil || res.AppliedSpecVersion >= res.SpecVersion || res.ApplyStatus == store.ApplyDeleting {
		return false
	}
	held, err := h.store.ListApprovalRequests(ctx, db, store.ApprovalFilter{
		ProjectID: res.ProjectID, State: store.ApprovalPending, TargetType: "gitops_resource", TargetID: res.ID, Limit: 1,
	})
	return err == nil && len(held) == 0
}

// findGitSource returns the project's GitRepository in the environment's cluster that reads
// t's repository and branch, nil when there is none. One in fluxNamespace is preferred.
func (h *Handler) findGitSource(ctx context.Context, db store.DBTX, sc *reqScope, t *deployTarget) (*store.Resource, error) {
	all, err := h.store.AllResources(ctx, db, store.ResourceFilter{ProjectID: sc.Project.ID, Cluster: sc.Env.Cluster, Kind: fluxspec.KindGitRepository})
	if err != nil {
		return nil, err
	}
	var found *store.Resource
	for i := range all {
		r := &all[i]
		if r.ApplyStatus == store.ApplyDeleting {
			continue
		}
		spec, err := fluxspec.Decode(r.Kind, r.Config)
		if err != nil {
			continue
		}
		c := spec.(*fluxspec.GitRepositoryConfig)
		sameRepo := c.URL != "" && gitops.SameRepository(c.URL, t.repo.URL) || c.URL == "" && r.RepositoryID != nil && *r.RepositoryID == t.repo.ID
		if !sameRepo || c.Ref == nil || c.Ref.Branch != t.branch {
			continue
		}
		if found == nil || found.Namespace != fluxNamespace && r.Namespace == fluxNamespace {
			found = r
		}
	}
	return found, nil
}

// kustomizationSourceRow returns the GitRepository row an existing Kustomization reads, nil
// when fluxbridge does not manage it. In a transaction the row stays locked until it ends.
func (h *Handler) kustomizationSourceRow(ctx context.Context, db store.DBTX, k *store.Resource) (*store.Resource, error) {
	spec, err := fluxspec.Decode(k.Kind, k.Config)
	if err != nil {
		return nil, nil
	}
	src, ok := fluxspec.SourceOf(spec, k.Namespace, k.Name)
	if !ok || src.Kind != fluxspec.KindGitRepository {
		return nil, nil
	}
	res, err := h.store.LockResourceByRef(ctx, db, store.ObjectRef{Cluster: k.Cluster, Kind: src.Kind, Namespace: src.Namespace, Name: src.Name})
	if errors.Is(err, store.ErrNotFound) || err == nil && res.ProjectID != k.ProjectID {
		return nil, nil
	}
	return res, err
}

// validConfig marshals a config and checks it as the resources API would.
func validConfig(kind string, c any) (json.RawMessage, error) {
	cfg, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if _, err := fluxspec.Decode(kind, cfg); err != nil {
		return nil, fmt.Errorf("bootstrap %s: %w", kind, err)
	}
	return cfg, nil
}

// carriedVersions are the versions of the resources a held deploy's job applies.
func carriedVersions(rs []*store.Resource) []jobs.ResourceVersion {
	out := make([]jobs.ResourceVersion, 0, len(rs))
	for _, r := range rs {
		out = append(out, jobs.ResourceVersion{ResourceID: r.ID, SpecVersion: r.SpecVersion})
	}
	return out
}

// notBranchChar is what a branch name may hold that an object name may not.
var notBranchChar = regexp.MustCompile(`[^a-z0-9-]+`)

// gitSourceName names the GitRepository of a project's repository and branch:
// <project>-<repository>-<branch>, the branch lowercased with other characters folded to '-';
// a branch changed by that folding gets a short hash of itself, so "feat/x" and "feat-x" do not
// share a name.
func gitSourceName(project, repo, branch string) string {
	b := strings.Trim(notBranchChar.ReplaceAllString(strings.ToLower(branch), "-"), "-")
	if b != branch {
		sum := sha256.Sum256([]byte(branch))
		b = strings.Trim(b+"-"+hex.EncodeToString(sum[:3]), "-")
	}
	name := project + "-" + repo + "-" + b
	if len(name) > maxSourceName {
		name = strings.TrimRight(name[:maxSourceName], "-.")
	}
	return name
}

// maxSourceName keeps a GitRepository's name, and the "-auth" Secret named after it, within
// Kubernetes' 253 characters.
const maxSourceName = 200

// checkBootstrap checks a deploy's plan for the environment's Flux objects: creating them is a
// maintainer's (R13.1) and never over an object fluxbridge does not manage, and an environment
// whose bootstrap still waits for its approvals takes no other deploy until it is decided.
func (h *Handler) checkBootstrap(ctx context.Context, db store.DBTX, sc *reqScope, f *envFlux) error {
	if f.kust != nil && !f.kust.Approved {
		return h.refuse("proposal_pending", errConflictf("environment",
			"environment %s is being bootstrapped by a change awaiting approval (approval request %s); approve or reject it first",
			sc.Env.Name, requestRef(f.kust)))
	}
	if f.source != nil && !f.source.Approved {
		return h.refuse("proposal_pending", errConflictf("environment",
			"the GitRepository %s/%s of environment %s awaits approval (approval request %s); approve or reject it first",
			f.source.Namespace, f.source.Name, sc.Env.Name, requestRef(f.source)))
	}
	if f.newKust == nil && f.newSource == nil {
		return nil
	}
	if err := h.mayBootstrap(sc); err != nil {
		return err
	}
	for _, nr := range []*store.NewResource{f.newSource, f.newKust} {
		if nr == nil {
			continue
		}
		if err := h.checkObjectFree(ctx, db, nr.Cluster, fluxspec.Ref{Kind: nr.Kind, Namespace: nr.Namespace, Name: nr.Name}); err != nil {
			return err
		}
	}
	return nil
}

// bootstrapResp is what POST …/environments/{env}/bootstrap made, or found.
type bootstrapResp struct {
	Kustomization fluxObjectView  `json:"kustomization"`
	Source        *fluxObjectView `json:"source,omitempty"`
	Approval      *approvalView   `json:"approval,omitempty"`
	Note          string          `json:"note,omitempty"`
}

// bootstrapEnvironment creates an environment's Flux objects without a deploy (R13.1: a
// maintainer's work): the GitRepository of its branch unless the cluster has one, and its
// Kustomization, confined to the environment. Its job pushes the environment's directory and
// then applies them; in an environment that requires approvals the objects are proposals and
// the job is held until the last approval. An environment that has its Kustomization already is
// answered as it is (200).
func (h *Handler) bootstrapEnvironment(w http.ResponseWriter, r *http.Request) {
	var out bootstrapResp
	status := http.StatusCreated
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		t, err := h.resolveTarget(ctx, tx, sc, "")
		if err != nil {
			return nil, err
		}
		g, err := h.gate(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		ef, err := h.planEnvFlux(ctx, tx, sc, t, nil)
		if err != nil {
			return nil, err
		}
		if err := h.checkBootstrap(ctx, tx, sc, ef); err != nil {
			return nil, err
		}
		ch := &auditChange{TargetType: "environment", TargetID: sc.Env.ID}
		if ef.newKust == nil && ef.newSource == nil {
			status = http.StatusOK
			out.Kustomization, out.Source = ef.views(sc, t, false)
			ch.Message = "environment " + sc.Env.Name + " is bootstrapped already"
			return ch, nil
		}
		apply, err := h.ensureEnvFlux(ctx, tx, ef, g.Held())
		if err != nil {
			return nil, err
		}
		args := jobs.BootstrapEnvironmentArgs{EnvironmentID: sc.Env.ID, RepositoryID: t.repo.ID, Branch: t.branch, Dir: t.dir,
			Namespaces: t.namespaces, Apply: carriedVersions(apply)}
		summary := fmt.Sprintf("bootstrap environment %s: push /%s on %s of %s", sc.Env.Name, t.dir, t.branch, t.repo.Name)
		if names := resourceNames(apply); names != "" {
			summary += "; applies " + names + " in cluster " + sc.Env.Cluster
		}
		if !ef.managed {
			out.Note = fmt.Sprintf(webhookOnlyNote, sc.Env.Cluster)
		}
		sub, err := g.Submit(ctx, tx, approval.TargetEnvironment, sc.Env.ID, summary, args, nil)
		if err != nil {
			return nil, err
		}
		if sub.Request != nil {
			status = http.StatusAccepted
			if err := h.store.AttachUnclaimedProposals(ctx, tx, sc.Project.ID, sub.Request.ID); err != nil {
				return nil, err
			}
			out.Approval = &approvalView{ApprovalRequest: sub.Request, Votes: []store.Vote{}}
		}
		out.Kustomization, out.Source = ef.views(sc, t, false)
		ch.Message, ch.Details = summary, submittedDetails(sub)
		ch.Details["apply_resource_ids"] = resourceIDs(apply)
		return ch, nil
	}) {
		return
	}
	writeJSON(w, status, out)
}
