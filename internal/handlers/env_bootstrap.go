package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
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
// anything: the existing Kustomization and its source, or the ones a first deploy creates.
func (h *Handler) planEnvFlux(ctx context.Context, db store.DBTX, sc *reqScope, t *deployTarget) (*envFlux, error) {
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
	kc := fluxspec.KustomizationConfig{
		SourceRef: ref, Path: t.fluxPath(), Prune: &prune, Wait: def.Wait,
		Interval: def.Interval, RetryInterval: def.RetryInterval, Timeout: def.Timeout,
	}
	cfg, err := validConfig(fluxspec.KindKustomization, kc)
	if err != nil {
		return nil, err
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
// that was recorded before but never reached the cluster (a first deploy that was rejected,
// say) and that no approval request of its own holds.
func (h *Handler) ensureEnvFlux(ctx context.Context, tx pgx.Tx, f *envFlux) ([]*store.Resource, error) {
	var carry []*store.Resource
	if f.newSource != nil {
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
	return res != nil && res.AppliedSpecVersion == 0 && h.unapplied(ctx, db, res)
}

// unapplied tells whether res has settings not yet in its cluster that no approval request
// holds (a deploy whose push failed changed them, say), so a deploy may carry their apply.
func (h *Handler) unapplied(ctx context.Context, db store.DBTX, res *store.Resource) bool {
	if res.AppliedSpecVersion >= res.SpecVersion || res.ApplyStatus == store.ApplyDeleting {
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
	all, err := h.store.ListResources(ctx, db, store.ResourceFilter{ProjectID: sc.Project.ID, Cluster: sc.Env.Cluster, Kind: fluxspec.KindGitRepository})
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
		sameRepo := c.URL == t.repo.URL || c.URL == "" && r.RepositoryID != nil && *r.RepositoryID == t.repo.ID
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
