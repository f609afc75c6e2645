package store

import (
	"context"
	"fmt"
	"time"
)

// ProjectHealth counts each project's resources by status, a suspended one as "suspended"
// whatever Flux last said: the health summary of the projects page.
func (s *Store) ProjectHealth(ctx context.Context, db DBTX, projectIDs []int64) (map[int64]map[string]int, error) {
	return healthCounts(ctx, db, "project health", `
		SELECT project_id, CASE WHEN suspended THEN 'suspended' ELSE status END AS st, count(*)
		FROM gitops_resources WHERE project_id = ANY($1) GROUP BY 1, 2`, projectIDs)
}

// healthCounts reads (id, status, count) rows into counts by id and status.
func healthCounts(ctx context.Context, db DBTX, what, query string, args ...any) (map[int64]map[string]int, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := map[int64]map[string]int{}
	for rows.Next() {
		var id int64
		var st string
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if out[id] == nil {
			out[id] = map[string]int{}
		}
		out[id][st] = n
	}
	return out, rows.Err()
}

// ProjectFluxEvent is a Flux event about one of a project's resources.
type ProjectFluxEvent struct {
	ID            int64     `db:"id" json:"id"`
	Cluster       string    `db:"cluster" json:"cluster"`
	EventTime     time.Time `db:"event_time" json:"event_time"`
	Kind          string    `db:"kind" json:"kind"`
	Namespace     string    `db:"namespace" json:"namespace"`
	Name          string    `db:"name" json:"name"`
	Severity      string    `db:"severity" json:"severity"`
	Reason        string    `db:"reason" json:"reason"`
	Message       string    `db:"message" json:"message"`
	Revision      string    `db:"revision" json:"revision"`
	ResourceID    int64     `db:"resource_id" json:"resource_id"`
	EnvironmentID *int64    `db:"environment_id" json:"environment_id"`
}

// RecentFluxEvents returns the newest Flux events about a project's resources, newest first.
func (s *Store) RecentFluxEvents(ctx context.Context, db DBTX, projectID int64, limit int) ([]ProjectFluxEvent, error) {
	rows, _ := db.Query(ctx, `
		SELECT e.id, e.cluster, e.event_time, e.kind, e.namespace, e.name, e.severity, e.reason, e.message, e.revision,
		       r.id AS resource_id, r.environment_id
		FROM flux_events e
		JOIN gitops_resources r ON r.cluster = e.cluster AND r.kind = e.kind AND r.namespace = e.namespace AND r.name = e.name
		WHERE r.project_id = $1
		ORDER BY e.event_time DESC, e.id DESC LIMIT $2`, projectID, limit)
	out, err := collectAll[ProjectFluxEvent](rows)
	if err != nil {
		return nil, fmt.Errorf("recent flux events: %w", err)
	}
	return out, nil
}

// EnvironmentHealth counts a project's resources by environment and status as ProjectHealth
// does; project-wide resources (no environment) are under 0.
func (s *Store) EnvironmentHealth(ctx context.Context, db DBTX, projectID int64) (map[int64]map[string]int, error) {
	return healthCounts(ctx, db, "environment health", `
		SELECT coalesce(environment_id, 0), CASE WHEN suspended THEN 'suspended' ELSE status END AS st, count(*)
		FROM gitops_resources WHERE project_id = $1 GROUP BY 1, 2`, projectID)
}
