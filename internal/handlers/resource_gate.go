package handlers

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// approvalGate is what a change of a resource needs: the approvals of the strictest
// environment among the resource's own and those of every resource that reads it, directly or
// through other sources, in its cluster (gate by consumer). A GitRepository a prod
// Kustomization reads is gated by prod although it belongs to no environment; an
// ImageUpdateAutomation by the environments of the Kustomizations that apply what it writes.
type approvalGate struct {
	// Env is the environment whose settings gate the change; nil when no environment is
	// involved (a source nothing reads yet).
	Env      *store.Environment
	Required int
	TTL      time.Duration
}

// Held tells whether the change waits for approvals.
func (g *approvalGate) Held() bool { return g != nil && g.Required > 0 }

// resourceGraph is the reference graph of one cluster's resources: who reads what.
type resourceGraph struct {
	byRef     map[fluxspec.Ref]*store.Resource
	consumers map[fluxspec.Ref][]*store.Resource
	specs     map[int64]fluxspec.Spec
}

// loadGraph reads every resource of the cluster (of every project: references cross project
// boundaries only to be refused) with the settings it has or will have once its pending change
// is approved.
func (h *Handler) loadGraph(ctx context.Context, db store.DBTX, cluster string) (*resourceGraph, error) {
	all, err := h.store.AllResources(ctx, db, store.ResourceFilter{Cluster: cluster})
	if err != nil {
		return nil, err
	}
	g := &resourceGraph{byRef: map[fluxspec.Ref]*store.Resource{}, consumers: map[fluxspec.Ref][]*store.Resource{}, specs: map[int64]fluxspec.Spec{}}
	for i := range all {
		r := &all[i]
		g.byRef[refOfRow(r)] = r
		if r.ApplyStatus == store.ApplyDeleting {
			continue
		}
		spec, err := fluxspec.Decode(r.Kind, r.Effective())
		if err != nil {
			continue
		}
		g.specs[r.ID] = spec
		for _, ref := range fluxspec.Reads(spec, r.Namespace) {
			g.consumers[ref] = append(g.consumers[ref], r)
		}
	}
	return g, nil
}

func refOfRow(r *store.Resource) fluxspec.Ref {
	return fluxspec.Ref{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// consumerEnvs returns the environment IDs of everything that reads self, transitively. An
// ImageUpdateAutomation (spec) counts the Kustomizations that apply the part of its
// GitRepository it writes to.
func (g *resourceGraph) consumerEnvs(self fluxspec.Ref, spec fluxspec.Spec) map[int64]bool {
	envs := map[int64]bool{}
	seen := map[fluxspec.Ref]bool{self: true}
	queue := []fluxspec.Ref{self}
	if iua, ok := spec.(*fluxspec.ImageUpdateAutomationConfig); ok {
		for _, target := range fluxspec.Reads(spec, self.Namespace) {
			for _, c := range g.consumers[target] {
				if c.EnvironmentID == nil || c.Kind == fluxspec.KindImageUpdateAutomation {
					continue
				}
				if kc, ok := g.specs[c.ID].(*fluxspec.KustomizationConfig); ok && !pathsOverlap(iua.Path, kc.Path) {
					continue
				}
				envs[*c.EnvironmentID] = true
			}
		}
	}
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		for _, c := range g.consumers[ref] {
			if c.EnvironmentID != nil {
				envs[*c.EnvironmentID] = true
			}
			if cr := refOfRow(c); !seen[cr] {
				seen[cr] = true
				queue = append(queue, cr)
			}
		}
	}
	return envs
}

// pathsOverlap tells whether two repository paths ("" or "." for the root) contain one another.
func pathsOverlap(a, b string) bool {
	clean := func(p string) string {
		p = path.Clean("/" + strings.TrimPrefix(p, "./"))
		return strings.TrimSuffix(p, "/") + "/"
	}
	x, y := clean(a), clean(b)
	return strings.HasPrefix(x, y) || strings.HasPrefix(y, x)
}

// gateFor works out the approvals a change of the object self (with its settings spec,
// belonging to environment ownEnv or none) needs in cluster.
func (h *Handler) gateFor(ctx context.Context, db store.DBTX, cluster string, self fluxspec.Ref, spec fluxspec.Spec, ownEnv *int64) (*approvalGate, error) {
	g, err := h.loadGraph(ctx, db, cluster)
	if err != nil {
		return nil, err
	}
	ids := g.consumerEnvs(self, spec)
	if ownEnv != nil {
		ids[*ownEnv] = true
	}
	return h.strictest(ctx, db, ids)
}

// strictest picks, of the environments ids, the one whose changes need the most approvals (a
// prod one on a tie).
func (h *Handler) strictest(ctx context.Context, db store.DBTX, ids map[int64]bool) (*approvalGate, error) {
	gate := &approvalGate{}
	for id := range ids {
		env, err := h.store.EnvironmentByID(ctx, db, id)
		if err != nil {
			return nil, err
		}
		cfg, err := policy.ParseEnvConfig(env.GitopsConfig)
		if err != nil {
			return nil, errConflict("environment %q has invalid access settings (%v); an admin must repair its gitops_config", env.Name, err)
		}
		n := cfg.Approvals(env.Kind)
		stricter := gate.Env == nil || n > gate.Required ||
			n == gate.Required && env.Kind == policy.KindProd && gate.Env.Kind != policy.KindProd ||
			n == gate.Required && env.Kind == gate.Env.Kind && env.ID < gate.Env.ID
		if stricter {
			gate.Env, gate.Required, gate.TTL = env, n, cfg.TTL()
		}
	}
	return gate, nil
}

// authorizeGate checks the caller's deploy permission in the gate's environment when it is
// not the resource's own: whoever changes a source prod reads needs prod's deploy permission.
func (h *Handler) authorizeGate(ctx context.Context, db store.DBTX, sc *reqScope, gate *approvalGate, ownEnv *int64) error {
	if gate.Env == nil || ownEnv != nil && *ownEnv == gate.Env.ID {
		return nil
	}
	return h.authorizeEnv(ctx, db, sc, gate.Env)
}

// checkReadsOwnProject refuses references to sources another project manages: their changes
// are approved by that project's people, so they must not steer this project's deploys.
func (h *Handler) checkReadsOwnProject(ctx context.Context, db store.DBTX, projectID int64, cluster, namespace string, spec fluxspec.Spec) error {
	for _, ref := range fluxspec.Reads(spec, namespace) {
		r, err := h.store.LockResourceByRef(ctx, db, store.ObjectRef{Cluster: cluster, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name})
		if err != nil {
			continue // not managed by fluxbridge: nothing to gate
		}
		if r.ProjectID != projectID {
			return h.refuse("cross_project_reference", errBadRequest(readsField(spec),
				"%s %s/%s in cluster %s belongs to another project; reference a source of this project", ref.Kind, ref.Namespace, ref.Name, cluster))
		}
	}
	return nil
}

// readsField names the config field of a spec's reference, for errors.
func readsField(spec fluxspec.Spec) string {
	switch c := spec.(type) {
	case *fluxspec.HelmReleaseConfig:
		if c.ChartRef != nil {
			return "config.chartRef"
		}
		return "config.chart.sourceRef"
	case *fluxspec.ImagePolicyConfig:
		return "config.imageRepositoryRef"
	}
	return "config.sourceRef"
}

// raisePending raises the approvals of pending changes of what a resource reads when the
// resource brings a stricter environment to them: a prod Kustomization that starts reading a
// GitRepository makes a change of that GitRepository already waiting for fewer approvals wait
// for prod's.
func (h *Handler) raisePending(ctx context.Context, tx pgx.Tx, cluster, namespace string, spec fluxspec.Spec, gate *approvalGate) error {
	if !gate.Held() {
		return nil
	}
	g, err := h.loadGraph(ctx, tx, cluster)
	if err != nil {
		return err
	}
	seen := map[fluxspec.Ref]bool{}
	queue := fluxspec.Reads(spec, namespace)
	for len(queue) > 0 {
		ref := queue[0]
		queue = queue[1:]
		if seen[ref] {
			continue
		}
		seen[ref] = true
		up := g.byRef[ref]
		if up == nil {
			continue
		}
		if s, ok := g.specs[up.ID]; ok {
			queue = append(queue, fluxspec.Reads(s, up.Namespace)...)
		}
		ups := []*store.Resource{up}
		if ref.Kind == fluxspec.KindGitRepository { // automations writing to it
			for _, c := range g.consumers[ref] {
				if c.Kind == fluxspec.KindImageUpdateAutomation {
					ups = append(ups, c)
				}
			}
		}
		for _, u := range ups {
			if u.PendingRequestID == nil {
				continue
			}
			if _, err := tx.Exec(ctx, `
				UPDATE approval_requests SET required_approvals = $2, environment_id = $3
				WHERE id = $1 AND state = 'pending' AND required_approvals < $2`,
				*u.PendingRequestID, gate.Required, gate.Env.ID); err != nil {
				return fmt.Errorf("raise approvals of request %d: %w", *u.PendingRequestID, err)
			}
		}
	}
	return nil
}
