package store

import (
	"context"
	"fmt"
)

// AlertSource is a Flux object fluxbridge manages in a cluster, with the project and
// environment its events belong to: what the cluster's Alerts must cover.
type AlertSource struct {
	Project     string `db:"project"`
	Environment string `db:"environment"` // "" for a project's shared sources
	Kind        string `db:"kind"`
	Namespace   string `db:"namespace"`
	Name        string `db:"name"`
}

// AlertSources returns every resource of a cluster, those being deleted included (their
// deletion is reported too), ordered by project, environment, kind, namespace and name.
// The wiring job needs every one, so they are read a page at a time.
func (s *Store) AlertSources(ctx context.Context, db DBTX, cluster string) ([]AlertSource, error) {
	return readAll(func(last *AlertSource, limit int) ([]AlertSource, error) {
		var a AlertSource
		if last != nil {
			a = *last
		}
		rows, _ := db.Query(ctx, `
			SELECT * FROM (
				SELECT p.slug AS project, COALESCE(e.name, '') AS environment, r.kind, r.namespace, r.name
				FROM gitops_resources r
				JOIN projects p ON p.id = r.project_id
				LEFT JOIN environments e ON e.id = r.environment_id
				WHERE r.cluster = $1) s
			WHERE NOT $2 OR (project, environment, kind, namespace, name) > ($3, $4, $5, $6, $7)
			ORDER BY 1, 2, 3, 4, 5 LIMIT $8`, cluster, last != nil, a.Project, a.Environment, a.Kind, a.Namespace, a.Name, limit)
		out, err := collectAll[AlertSource](rows)
		if err != nil {
			return nil, fmt.Errorf("list alert sources of cluster %s: %w", cluster, err)
		}
		return out, nil
	})
}
