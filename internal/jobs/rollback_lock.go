package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// lockImageAutomation suspends, in tx, the ImageUpdateAutomations of the rollback's cluster
// that write to its app's directory through the environment's GitRepository, so that they do
// not move the app forward again, and marks the rollback as the app's lock. A rollback that
// held the app before hands its suspended automations over. The applies that put spec.suspend
// into the cluster are enqueued in tx.
func lockImageAutomation(ctx context.Context, tx pgx.Tx, st *store.Store, rc *river.Client[pgx.Tx], rb *store.Rollback) error {
	locked := slices.Clone(rb.LockedResourceIDs)
	prev, err := st.LockingRollback(ctx, tx, rb.EnvironmentID, rb.App)
	switch {
	case err == nil && prev.ID != rb.ID:
		locked = append(locked, prev.LockedResourceIDs...)
		prev.Locked, prev.LockedResourceIDs = false, []int64{}
		now := time.Now()
		prev.UnlockedAt = &now
		prev.Message = strings.TrimSpace(prev.Message + fmt.Sprintf(" (lock handed over to rollback %d)", rb.ID))
		if err := st.SaveRollback(ctx, tx, prev); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	autos, err := imageAutomationsOf(ctx, tx, st, rb)
	if err != nil {
		return err
	}
	var apply []int64
	for _, r := range autos {
		if r.Suspended {
			continue // suspended by someone else: not ours to resume
		}
		if _, err := st.SetResourceSuspended(ctx, tx, r.ID, true); err != nil {
			return err
		}
		locked, apply = append(locked, r.ID), append(apply, r.ID)
	}
	slices.Sort(locked)
	rb.Locked, rb.LockedResourceIDs = true, slices.Compact(locked)
	if len(apply) == 0 || rc == nil {
		return nil
	}
	return EnqueueApplyTx(ctx, rc, tx, apply...)
}

// imageAutomationsOf returns the ImageUpdateAutomations that would update the rollback's app:
// in the cluster of the environment's Kustomization, reading its GitRepository, with an update
// path that contains the app's directory (or no path: the whole repository).
func imageAutomationsOf(ctx context.Context, tx pgx.Tx, st *store.Store, rb *store.Rollback) ([]store.Resource, error) {
	if rb.ResourceID == nil {
		return nil, nil
	}
	k, err := st.ResourceByID(ctx, tx, *rb.ResourceID)
	if err != nil {
		return nil, err
	}
	src, ok := sourceOfKustomization(k)
	if !ok {
		return nil, nil
	}
	all, err := st.AllResources(ctx, tx, store.ResourceFilter{ProjectID: rb.ProjectID, Kind: fluxspec.KindImageUpdateAutomation})
	if err != nil {
		return nil, err
	}
	var out []store.Resource
	for _, r := range all {
		if r.Cluster != k.Cluster || r.Namespace != src.Namespace || r.ApplyStatus == store.ApplyDeleting {
			continue
		}
		spec, err := fluxspec.Decode(r.Kind, r.Config)
		if err != nil {
			continue
		}
		c := spec.(*fluxspec.ImageUpdateAutomationConfig)
		if c.SourceRef != src.Name || !pathCovers(c.Path, rb.Path) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// pathCovers tells whether an update path (relative to the repository root; "" or "." for all of
// it) contains dir.
func pathCovers(updatePath, dir string) bool {
	p := path.Clean(strings.TrimPrefix(updatePath, "./"))
	if p == "." || p == "" {
		return true
	}
	d := path.Clean(dir)
	return d == p || strings.HasPrefix(d, p+"/")
}

// sourceOfKustomization returns the GitRepository a Kustomization resource reads.
func sourceOfKustomization(k *store.Resource) (fluxspec.Ref, bool) {
	spec, err := fluxspec.Decode(k.Kind, k.Config)
	if err != nil {
		return fluxspec.Ref{}, false
	}
	kc, ok := spec.(*fluxspec.KustomizationConfig)
	if !ok || kc.SourceRef.Kind != fluxspec.KindGitRepository {
		return fluxspec.Ref{}, false
	}
	ns := kc.SourceRef.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	return fluxspec.Ref{Kind: kc.SourceRef.Kind, Namespace: ns, Name: kc.SourceRef.Name}, true
}

// Released is what ReleaseRollbackTx undid.
type Released struct {
	Resumed  []int64 `json:"resumed_resource_ids"`
	Unpinned bool    `json:"unpinned"`
}

// ReleaseRollbackTx unlocks an app held by rollback rb, in tx: it resumes the image
// automation the rollback suspended (unless someone changed it since) and, for a pin, points
// the Kustomization back at its GitRepository and deletes the pinned one. The applies and the
// delete are enqueued in tx with rc. by is who unlocks (nil for the system).
func ReleaseRollbackTx(ctx context.Context, tx pgx.Tx, st *store.Store, rc *river.Client[pgx.Tx], rb *store.Rollback, by *int64) (Released, error) {
	var out Released
	for _, id := range rb.LockedResourceIDs {
		r, err := st.LockResourceByID(ctx, tx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		if !r.Suspended || r.ApplyStatus == store.ApplyDeleting {
			continue
		}
		if _, err := st.SetResourceSuspended(ctx, tx, r.ID, false); err != nil {
			return out, err
		}
		out.Resumed = append(out.Resumed, r.ID)
	}
	if err := EnqueueApplyTx(ctx, rc, tx, out.Resumed...); err != nil {
		return out, err
	}
	if rb.Strategy == store.RollbackPin && rb.ResourceID != nil && len(rb.OriginalSource) > 0 {
		if err := unpin(ctx, tx, st, rc, rb); err != nil {
			return out, err
		}
		out.Unpinned = true
	}
	now := time.Now()
	rb.Locked, rb.UnlockedAt, rb.UnlockedBy = false, &now, by
	return out, st.SaveRollback(ctx, tx, rb)
}

// unpin restores the Kustomization's sourceRef and deletes the pinned GitRepository.
func unpin(ctx context.Context, tx pgx.Tx, st *store.Store, rc *river.Client[pgx.Tx], rb *store.Rollback) error {
	k, err := st.LockResourceByID(ctx, tx, *rb.ResourceID)
	if err != nil {
		return err
	}
	cfg, err := withSourceRef(k.Config, rb.OriginalSource)
	if err != nil {
		return err
	}
	if _, err := st.UpdateResourceConfig(ctx, tx, k.ID, cfg, k.RepositoryID); err != nil {
		return err
	}
	if err := EnqueueApplyTx(ctx, rc, tx, k.ID); err != nil {
		return err
	}
	if rb.PinResourceID == nil {
		return nil
	}
	if _, err := st.MarkResourceDeleting(ctx, tx, *rb.PinResourceID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	} else if err == nil {
		if _, err := rc.InsertTx(ctx, tx, DeleteResourceArgs{ResourceID: *rb.PinResourceID}, nil); err != nil {
			return fmt.Errorf("enqueue delete of the pinned source: %w", err)
		}
	}
	return nil
}

// withSourceRef returns a Kustomization config with its sourceRef replaced by ref (JSON).
func withSourceRef(config, ref json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(config, &m); err != nil {
		return nil, fmt.Errorf("kustomization config: %w", err)
	}
	m["sourceRef"] = ref
	return json.Marshal(m)
}
