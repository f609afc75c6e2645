package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Apply statuses of a resource (gitops_resources.apply_status): whether its current settings
// are in the cluster.
const (
	ApplyPending  = "pending"
	ApplyApplied  = "applied"
	ApplyFailed   = "failed"
	ApplyDeleting = "deleting"
)

// LockResourceByID returns a resource and locks its row until the transaction ends.
func (s *Store) LockResourceByID(ctx context.Context, db DBTX, id int64) (*Resource, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM gitops_resources WHERE id = $1 FOR UPDATE`, id)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("gitops resource %d", id))
	}
	return r, nil
}

// UpdateResourceConfig replaces a resource's settings and repository, and marks the change as
// waiting for the apply job (a new spec version).
func (s *Store) UpdateResourceConfig(ctx context.Context, db DBTX, id int64, cfg json.RawMessage, repositoryID *int64) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		UPDATE gitops_resources SET config = $2, repository_id = $3, spec_version = spec_version + 1,
			apply_status = 'pending', apply_error = '', updated_at = now()
		WHERE id = $1 RETURNING *`, id, cfg, repositoryID)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("gitops resource %d", id))
	}
	return r, nil
}

// SetResourceSuspended records the desired spec.suspend of a resource as a new spec version.
func (s *Store) SetResourceSuspended(ctx context.Context, db DBTX, id int64, suspended bool) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		UPDATE gitops_resources SET suspended = $2, spec_version = spec_version + 1,
			apply_status = 'pending', apply_error = '', updated_at = now()
		WHERE id = $1 RETURNING *`, id, suspended)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("gitops resource %d", id))
	}
	return r, nil
}

// BumpSpecVersion marks a resource as needing a new apply without changing its settings, for
// changes that come from elsewhere (its environment's sync policy, branch or path).
func (s *Store) BumpSpecVersion(ctx context.Context, db DBTX, id int64) error {
	_, err := db.Exec(ctx, `
		UPDATE gitops_resources SET spec_version = spec_version + 1, apply_status = 'pending', updated_at = now()
		WHERE id = $1 AND apply_status <> 'deleting'`, id)
	if err != nil {
		return fmt.Errorf("bump spec version of gitops resource %d: %w", id, err)
	}
	return nil
}

// MarkResourceDeleting flags a resource for the delete job; the row stays until its object is
// gone from the cluster.
func (s *Store) MarkResourceDeleting(ctx context.Context, db DBTX, id int64) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		UPDATE gitops_resources SET apply_status = 'deleting', updated_at = now()
		WHERE id = $1 RETURNING *`, id)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("gitops resource %d", id))
	}
	return r, nil
}

// DeleteResource removes a resource row (its history and reconcile requests go with it).
func (s *Store) DeleteResource(ctx context.Context, db DBTX, id int64) error {
	if _, err := db.Exec(ctx, `DELETE FROM gitops_resources WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete gitops resource %d: %w", id, err)
	}
	return nil
}

// Applied is what the apply job learnt from a successful server-side apply.
type Applied struct {
	SpecVersion int64
	UID         string
	Generation  int64
	At          time.Time
}

// RecordApplied records that spec version a.SpecVersion is in the cluster. The resource counts
// as applied only when no newer version was asked for meanwhile, and never while deleting.
func (s *Store) RecordApplied(ctx context.Context, db DBTX, id int64, a Applied) error {
	_, err := db.Exec(ctx, `
		UPDATE gitops_resources SET
			applied_spec_version = GREATEST(applied_spec_version, $2),
			apply_status = CASE WHEN apply_status = 'deleting' THEN apply_status
				WHEN $2 >= spec_version THEN 'applied' ELSE apply_status END,
			apply_error = CASE WHEN $2 >= spec_version THEN '' ELSE apply_error END,
			applied_at = $5,
			object_uid = COALESCE(NULLIF($3, ''), object_uid),
			generation = GREATEST(generation, $4),
			updated_at = now()
		WHERE id = $1`, id, a.SpecVersion, a.UID, a.Generation, a.At)
	if err != nil {
		return fmt.Errorf("record apply of gitops resource %d: %w", id, err)
	}
	return nil
}

// RecordApplyError records why the last apply attempt failed (the job retries).
func (s *Store) RecordApplyError(ctx context.Context, db DBTX, id int64, msg string) error {
	_, err := db.Exec(ctx, `
		UPDATE gitops_resources SET
			apply_status = CASE WHEN apply_status = 'deleting' THEN apply_status ELSE 'failed' END,
			apply_error = $2, updated_at = now()
		WHERE id = $1`, id, msg)
	if err != nil {
		return fmt.Errorf("record apply error of gitops resource %d: %w", id, err)
	}
	return nil
}

// ResourcesByRefs returns the resources of one cluster and kind, keyed by "namespace/name",
// for checking references (dependsOn) between them.
func (s *Store) ResourcesByRefs(ctx context.Context, db DBTX, cluster, kind string) (map[string]Resource, error) {
	all, err := s.AllResources(ctx, db, ResourceFilter{Cluster: cluster, Kind: kind})
	if err != nil {
		return nil, fmt.Errorf("list %s resources of cluster %s: %w", kind, cluster, err)
	}
	out := make(map[string]Resource, len(all))
	for _, r := range all {
		out[r.Namespace+"/"+r.Name] = r
	}
	return out, nil
}

// ProjectByID returns one project.
func (s *Store) ProjectByID(ctx context.Context, db DBTX, id int64) (*Project, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM projects WHERE id = $1`, id)
	p, err := collectOne[Project](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("project %d", id))
	}
	return p, nil
}
