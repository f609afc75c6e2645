package handlers

import (
	"context"
	"regexp"

	"github.com/fluxcd/pkg/apis/meta"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// BlockingDependency is the dependency a Kustomization or HelmRelease waits on (R16.2, R16.4):
// Flux does not apply an object while one of its dependsOn is not ready, and reports
// DependencyNotReady.
type BlockingDependency struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// ID is the dependency's resource, when fluxbridge manages it.
	ID *int64 `json:"id,omitempty"`
	// Status, Reason and Message are the dependency's own, as last observed.
	Status  string `json:"status,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// notReadyDependency finds "dependency 'ns/name' is not ready" in Flux's message.
var notReadyDependency = regexp.MustCompile(`dependency '([^'/]+)/([^']+)' is not ready`)

// waitingOn returns the dependency res waits on, or nil when it waits on none: the one Flux's
// DependencyNotReady message names, else the first of its dependsOn that is not ready.
func (h *Handler) waitingOn(ctx context.Context, db store.DBTX, res *store.Resource) (*BlockingDependency, error) {
	if res.StatusReason != meta.DependencyNotReadyReason || !fluxspec.IsApplier(res.Kind) {
		return nil, nil
	}
	var named *fluxspec.Ref
	if m := notReadyDependency.FindStringSubmatch(res.StatusMessage); m != nil {
		named = &fluxspec.Ref{Kind: res.Kind, Namespace: m[1], Name: m[2]}
	}
	var deps []fluxspec.Ref
	if spec, err := fluxspec.Decode(res.Kind, res.Config); err == nil {
		deps = spec.Dependencies(res.Namespace)
	}
	managed, err := h.store.ResourcesByRefs(ctx, db, res.Cluster, res.Kind)
	if err != nil {
		return nil, err
	}
	view := func(d fluxspec.Ref) *BlockingDependency {
		b := &BlockingDependency{Kind: d.Kind, Namespace: d.Namespace, Name: d.Name}
		if r, ok := managed[d.Namespace+"/"+d.Name]; ok {
			b.ID, b.Status, b.Reason, b.Message = &r.ID, r.Status, r.StatusReason, r.StatusMessage
		}
		return b
	}
	if named != nil {
		return view(*named), nil
	}
	for _, d := range deps {
		if r, ok := managed[d.Namespace+"/"+d.Name]; !ok || r.Status != "ready" {
			return view(d), nil
		}
	}
	return nil, nil
}
