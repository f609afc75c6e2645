package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// createResourceReq is the body of POST /projects/{project}/resources and
// POST /projects/{project}/environments/{env}/resources. One call creates one resource per
// target (apply-to-many): per cluster in Clusters, or per environment in Environments (each in
// its environment's cluster). On the environment route the target is that environment.
type createResourceReq struct {
	Kind         string          `json:"kind"`
	Namespace    string          `json:"namespace"`
	Name         string          `json:"name"`
	Cluster      string          `json:"cluster,omitempty"`
	Clusters     []string        `json:"clusters,omitempty"`
	Environment  string          `json:"environment,omitempty"`
	Environments []string        `json:"environments,omitempty"`
	RepositoryID *int64          `json:"repository_id,omitempty"`
	Config       json.RawMessage `json:"config,omitempty"`
}

// target is one place a created resource goes.
type target struct {
	Cluster string
	Env     *store.Environment
}

// createResponse lists what a create made, one resource per target. Held maps the ID of each
// resource whose apply waits for approvals (its environment requires them) to the approval
// request's ID.
type createResponse struct {
	Items []store.Resource `json:"items"`
	Held  map[int64]int64  `json:"held,omitempty"`
}

// changeResponse is a changed resource and, when the change waits for approvals, the approval
// request holding it.
type changeResponse struct {
	store.Resource
	ApprovalRequestID *int64 `json:"approval_request_id,omitempty"`
}

func (h *Handler) createResource(w http.ResponseWriter, r *http.Request) {
	var req createResourceReq
	if err := readJSON(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	var out *createResponse
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		out, err = h.createResources(ctx, tx, scopeOf(r), &req)
		if err != nil {
			return nil, err
		}
		ids := make([]int64, len(out.Items))
		targets := make([]string, len(out.Items))
		for i, it := range out.Items {
			ids[i], targets[i] = it.ID, it.Cluster
		}
		ch := &auditChange{
			TargetType: "gitops_resource", TargetID: joinIDs(ids), After: req.Config,
			Message: fmt.Sprintf("created %s %s/%s in %s", req.Kind, req.Namespace, req.Name, strings.Join(targets, ", ")),
			Details: map[string]any{"resource_ids": ids, "kind": req.Kind, "clusters": targets},
		}
		if len(out.Items) == 1 {
			ch.EnvironmentID, ch.Cluster = out.Items[0].EnvironmentID, out.Items[0].Cluster
		}
		return ch, nil
	}) {
		return
	}
	status := http.StatusCreated
	if len(out.Held) > 0 {
		status = http.StatusAccepted
	}
	writeJSON(w, status, out)
}

// createResources validates req and inserts one row and one apply job per target. In a target
// whose gate requires approvals the row is created unapproved, its settings a proposal that
// the last approval makes live; nothing applies it before.
func (h *Handler) createResources(ctx context.Context, tx pgx.Tx, sc *reqScope, req *createResourceReq) (*createResponse, error) {
	spec, err := fluxspec.Decode(req.Kind, req.Config)
	if err != nil {
		return nil, specError(err)
	}
	if !objectNameRE.MatchString(req.Name) {
		return nil, errBadRequest("name", "must be a DNS subdomain (lowercase letters, digits, '-' and '.'), got %q", req.Name)
	}
	if !dnsLabelRE.MatchString(req.Namespace) {
		return nil, errBadRequest("namespace", "must be a DNS label, got %q", req.Namespace)
	}
	targets, err := h.targets(ctx, tx, sc, req)
	if err != nil {
		return nil, err
	}
	var repo *store.Repository
	if req.RepositoryID != nil {
		repo, err = h.store.RepositoryByID(ctx, tx, *req.RepositoryID)
		if err != nil || repo.ProjectID != sc.projectID() {
			return nil, errBadRequest("repository_id", "no repository %d in this project", *req.RepositoryID)
		}
	}
	if gr, ok := spec.(*fluxspec.GitRepositoryConfig); ok && gr.URL == "" && repo == nil {
		return nil, errBadRequest("config.url", "is required when repository_id is not set")
	}
	if err := h.checkCredentials(spec, req.Name, repo); err != nil {
		return nil, err
	}
	out := &createResponse{}
	self := fluxspec.Ref{Kind: req.Kind, Namespace: req.Namespace, Name: req.Name}
	for _, t := range targets {
		if err := h.checkObjectFree(ctx, tx, t.Cluster, self); err != nil {
			return nil, err
		}
		if err := h.checkConfinement(ctx, tx, sc.Project, t.Env, req.Namespace, spec); err != nil {
			return nil, err
		}
		if err := h.checkDependencies(ctx, tx, t.Cluster, req.Namespace, req.Name, spec); err != nil {
			return nil, err
		}
		if err := h.checkReadsOwnProject(ctx, tx, sc.projectID(), t.Cluster, req.Namespace, spec); err != nil {
			return nil, err
		}
		var ownEnv *int64
		if t.Env != nil {
			ownEnv = &t.Env.ID
		}
		gate, err := h.gateFor(ctx, tx, t.Cluster, self, spec, ownEnv)
		if err != nil {
			return nil, err
		}
		if err := h.authorizeGate(ctx, tx, sc, gate, ownEnv); err != nil {
			return nil, err
		}
		nr := store.NewResource{
			ProjectID: sc.projectID(), EnvironmentID: ownEnv, RepositoryID: req.RepositoryID, Cluster: t.Cluster,
			Kind: req.Kind, Namespace: req.Namespace, Name: req.Name, Config: compactJSON(req.Config), Proposed: gate.Held(),
		}
		res, err := h.store.CreateResource(ctx, tx, nr)
		if _, dup := store.IsUniqueViolation(err); dup {
			return nil, &httpError{Status: http.StatusConflict, Field: "name",
				Msg: fmt.Sprintf("%s %s/%s already exists in cluster %s", req.Kind, req.Namespace, req.Name, t.Cluster)}
		}
		if err != nil {
			return nil, err
		}
		summary := fmt.Sprintf("create %s %s/%s in cluster %s", req.Kind, req.Namespace, req.Name, t.Cluster)
		held, err := h.submitJob(ctx, tx, sc, gate, res, summary, jobs.ApplyResourceArgs{ResourceID: res.ID})
		if err != nil {
			return nil, err
		}
		if err := h.raisePending(ctx, tx, t.Cluster, req.Namespace, spec, gate); err != nil {
			return nil, err
		}
		if held != nil {
			if out.Held == nil {
				out.Held = map[int64]int64{}
			}
			out.Held[res.ID] = *held
			if res, err = h.store.ResourceByID(ctx, tx, res.ID); err != nil {
				return nil, err
			}
		}
		out.Items = append(out.Items, *res)
	}
	return out, nil
}

// targets resolves where a create goes. Appliers (Kustomization, HelmRelease) belong to an
// environment and go to its cluster; other kinds go to clusters, or to environments too.
func (h *Handler) targets(ctx context.Context, tx pgx.Tx, sc *reqScope, req *createResourceReq) ([]target, error) {
	var out []target
	envNames := req.Environments
	if req.Environment != "" {
		envNames = append([]string{req.Environment}, envNames...)
	}
	clusters := req.Clusters
	if req.Cluster != "" {
		clusters = append([]string{req.Cluster}, clusters...)
	}
	if sc.Env != nil {
		if len(envNames) > 0 || len(clusters) > 0 {
			return nil, errBadRequest("environments", "the environment route targets its own environment only")
		}
		out = append(out, target{Cluster: sc.Env.Cluster, Env: sc.Env})
	}
	for i, name := range envNames {
		env, err := h.store.EnvironmentByName(ctx, tx, sc.projectID(), name)
		if err != nil {
			return nil, errBadRequest(fmt.Sprintf("environments[%d]", i), "no environment %q in this project", name)
		}
		if err := h.authorizeEnv(ctx, tx, sc, env); err != nil {
			return nil, err
		}
		out = append(out, target{Cluster: env.Cluster, Env: env})
	}
	if len(out) > 0 && len(clusters) > 0 {
		return nil, errBadRequest("clusters", "give environments or clusters, not both")
	}
	if fluxspec.IsApplier(req.Kind) && len(out) == 0 {
		return nil, errBadRequest("environment", "a %s deploys into an environment: use /environments/{env}/resources or set environments", req.Kind)
	}
	for _, c := range clusters {
		out = append(out, target{Cluster: c})
	}
	if len(out) == 0 {
		return nil, errBadRequest("clusters", "name at least one cluster or environment")
	}
	seen := map[string]bool{}
	for i, t := range out {
		if seen[t.Cluster] {
			return nil, errBadRequest("clusters", "cluster %q targeted twice (an object's name is unique per cluster)", t.Cluster)
		}
		seen[t.Cluster] = true
		if err := h.checkCluster(fmt.Sprintf("clusters[%d]", i), t.Cluster); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// updateResourceReq is the body of PUT /projects/{project}/resources/{id}: the complete new
// config (and optionally the repository).
type updateResourceReq struct {
	Config       json.RawMessage `json:"config"`
	RepositoryID *int64          `json:"repository_id,omitempty"`
}

func (h *Handler) updateResource(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	var req updateResourceReq
	if err := readJSON(w, r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	var out changeResponse
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		res, err := h.lockChangeable(ctx, tx, sc, id)
		if err != nil {
			return nil, err
		}
		spec, err := fluxspec.Decode(res.Kind, req.Config)
		if err != nil {
			return nil, specError(err)
		}
		repoID := res.RepositoryID
		var repo *store.Repository
		if req.RepositoryID != nil {
			repoID = req.RepositoryID
		}
		if repoID != nil {
			repo, err = h.store.RepositoryByID(ctx, tx, *repoID)
			if err != nil || repo.ProjectID != res.ProjectID {
				return nil, errBadRequest("repository_id", "no repository %d in this project", *repoID)
			}
		}
		if gr, ok := spec.(*fluxspec.GitRepositoryConfig); ok && gr.URL == "" && repoID == nil {
			return nil, errBadRequest("config.url", "is required when the resource has no repository")
		}
		if err := h.checkCredentials(spec, res.Name, repo); err != nil {
			return nil, err
		}
		env, err := h.envOf(ctx, tx, res)
		if err != nil {
			return nil, err
		}
		if err := h.checkConfinement(ctx, tx, sc.Project, env, res.Namespace, spec); err != nil {
			return nil, err
		}
		if err := h.checkDependencies(ctx, tx, res.Cluster, res.Namespace, res.Name, spec); err != nil {
			return nil, err
		}
		if err := h.checkReadsOwnProject(ctx, tx, res.ProjectID, res.Cluster, res.Namespace, spec); err != nil {
			return nil, err
		}
		gate, err := h.gateFor(ctx, tx, res.Cluster, refOfRow(res), spec, res.EnvironmentID)
		if err != nil {
			return nil, err
		}
		if err := h.authorizeGate(ctx, tx, sc, gate, res.EnvironmentID); err != nil {
			return nil, err
		}
		cfg := compactJSON(req.Config)
		summary := fmt.Sprintf("change %s %s/%s in cluster %s", res.Kind, res.Namespace, res.Name, res.Cluster)
		if gate.Held() {
			// The change is a proposal: the live config stays until the last approval.
			if _, err := h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Config: cfg, RepositoryID: repoID}); err != nil {
				return nil, err
			}
		} else if _, err := h.store.UpdateResourceConfig(ctx, tx, res.ID, cfg, repoID); err != nil {
			return nil, err
		}
		if out.ApprovalRequestID, err = h.submitJob(ctx, tx, sc, gate, res, summary, jobs.ApplyResourceArgs{ResourceID: res.ID}); err != nil {
			return nil, err
		}
		if err := h.raisePending(ctx, tx, res.Cluster, res.Namespace, spec, gate); err != nil {
			return nil, err
		}
		updated, err := h.store.ResourceByID(ctx, tx, res.ID)
		if err != nil {
			return nil, err
		}
		out.Resource = *updated
		ch := resourceChange(res, res.Config, cfg, "changed")
		if out.ApprovalRequestID != nil {
			ch.Message = "proposed a change of " + strings.TrimPrefix(ch.Message, "changed ")
		}
		ch.Details = heldDetails(out.ApprovalRequestID)
		return ch, nil
	}) {
		return
	}
	writeJSON(w, heldStatus(out.ApprovalRequestID, http.StatusOK), out)
}

// heldStatus is 202 for a change held for approval, else ok.
func heldStatus(held *int64, ok int) int {
	if held != nil {
		return http.StatusAccepted
	}
	return ok
}

func heldDetails(held *int64) map[string]any {
	if held == nil {
		return nil
	}
	return map[string]any{"approval_request_id": *held}
}

func (h *Handler) deleteResource(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	var out changeResponse
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		res, err := h.lockChangeable(ctx, tx, sc, id)
		if err != nil {
			return nil, err
		}
		deps, err := h.dependents(ctx, tx, res)
		if err != nil {
			return nil, err
		}
		if len(deps) > 0 {
			slices.Sort(deps)
			return nil, &httpError{Status: http.StatusConflict, Field: "dependsOn",
				Msg: fmt.Sprintf("%s/%s is a dependency of %s; change those first", res.Namespace, res.Name, strings.Join(deps, ", "))}
		}
		spec, _ := fluxspec.Decode(res.Kind, res.Config)
		gate, err := h.gateFor(ctx, tx, res.Cluster, refOfRow(res), spec, res.EnvironmentID)
		if err != nil {
			return nil, err
		}
		if err := h.authorizeGate(ctx, tx, sc, gate, res.EnvironmentID); err != nil {
			return nil, err
		}
		if gate.Held() {
			if _, err := h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Delete: true}); err != nil {
				return nil, err
			}
		}
		summary := fmt.Sprintf("delete %s %s/%s from cluster %s", res.Kind, res.Namespace, res.Name, res.Cluster)
		if out.ApprovalRequestID, err = h.submitJob(ctx, tx, sc, gate, res, summary, jobs.DeleteResourceArgs{ResourceID: res.ID}); err != nil {
			return nil, err
		}
		if out.ApprovalRequestID == nil { // held: the delete job marks it once approved
			if _, err := h.store.MarkResourceDeleting(ctx, tx, res.ID); err != nil {
				return nil, err
			}
		}
		marked, err := h.store.ResourceByID(ctx, tx, res.ID)
		if err != nil {
			return nil, err
		}
		out.Resource = *marked
		ch := resourceChange(res, res.Config, nil, "deletion requested for")
		ch.Details = heldDetails(out.ApprovalRequestID)
		return ch, nil
	}) {
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}

// lockOwnResource locks a resource of the scoped project for a change; another project's
// resource is a 404, one being deleted a 409, and so is one whose create still waits for its
// approvals (there is nothing in the cluster to act on yet).
func (h *Handler) lockOwnResource(ctx context.Context, tx pgx.Tx, sc *reqScope, id int64) (*store.Resource, error) {
	res, err := h.store.LockResourceByID(ctx, tx, id)
	if err != nil || res.ProjectID != sc.projectID() {
		return nil, errNotFound("gitops resource %d: not found", id)
	}
	if err := h.authorizeResource(ctx, tx, sc, res); err != nil {
		return nil, err
	}
	if res.ApplyStatus == store.ApplyDeleting {
		return nil, &httpError{Status: http.StatusConflict, Msg: fmt.Sprintf("gitops resource %d is being deleted", id)}
	}
	if !res.Approved {
		return nil, h.refuse("not_approved", &httpError{Status: http.StatusConflict,
			Msg: fmt.Sprintf("%s %s/%s is not approved yet (approval request %s); nothing is in the cluster to act on", res.Kind, res.Namespace, res.Name, requestRef(res))})
	}
	return res, nil
}

// lockChangeable is lockOwnResource for a change of the resource's settings: one whose
// previous change still waits for approvals is a 409 naming that request.
func (h *Handler) lockChangeable(ctx context.Context, tx pgx.Tx, sc *reqScope, id int64) (*store.Resource, error) {
	res, err := h.lockOwnResource(ctx, tx, sc, id)
	if err != nil {
		return nil, err
	}
	if res.HasPending() {
		return nil, h.refuse("proposal_pending", &httpError{Status: http.StatusConflict,
			Msg: fmt.Sprintf("%s %s/%s has a change awaiting approval (approval request %s); approve or reject it first", res.Kind, res.Namespace, res.Name, requestRef(res))})
	}
	return res, nil
}

// requestRef names the approval request holding a resource's proposal.
func requestRef(res *store.Resource) string {
	if res.PendingRequestID == nil {
		return "not yet made"
	}
	return fmt.Sprint(*res.PendingRequestID)
}

func resourceChange(res *store.Resource, before, after any, verb string) *auditChange {
	return &auditChange{
		TargetType: "gitops_resource", TargetID: res.ID, Before: before, After: after,
		EnvironmentID: res.EnvironmentID, Cluster: res.Cluster,
		Message: fmt.Sprintf("%s %s %s/%s in cluster %s", verb, res.Kind, res.Namespace, res.Name, res.Cluster),
	}
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return strings.Join(s, ",")
}
