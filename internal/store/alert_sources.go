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
func (s *Store) AlertSources(ctx context.Context, db DBTX, cluster string) ([]AlertSource, error) {
	rows, _ := db.Query(ctx, `
		SELECT p.slug AS project, COALESCE(e.name, '') AS environment, r.kind, r.namespace, r.name
		FROM gitops_resources r
		JOIN projects p ON p.id = r.project_id
		LEFT JOIN environments e ON e.id = r.environment_id
		WHERE r.cluster = $1
		ORDER BY 1, 2, 3, 4, 5`, cluster)
	out, err := collectAll[AlertSource](rows)
	if err != nil {
		return nil, fmt.Errorf("list alert sources of cluster %s: %w", cluster, err)
	}
	return out, nil
}
