package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/migrations"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestUpIsIdempotentAndSerialised starts the receiver and worker at the same time, as a
// deployment does: concurrent Up calls wait for each other and the second finds nothing to do.
func TestUpIsIdempotentAndSerialised(t *testing.T) {
	pool := storetest.NewDB(t) // already migrated from the template
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	results := make([]migrations.Result, 4)
	for i := range errs {
		wg.Go(func() { results[i], errs[i] = migrations.Up(ctx, pool) })
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err)
		require.Empty(t, results[i].Goose, "nothing left to apply")
		require.Empty(t, results[i].River)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_name IN ('gitops_resources', 'deployments', 'audit_logs', 'river_job', 'flux_events')`).Scan(&n))
	require.Equal(t, 5, n)
}

// TestDeploymentMethodIsChecked: the schema itself refuses a method the platform does not know.
func TestDeploymentMethodIsChecked(t *testing.T) {
	tx := storetest.Tx(t)
	ctx := context.Background()
	var projectID, envID int64
	require.NoError(t, tx.QueryRow(ctx, `INSERT INTO projects (slug, name) VALUES ('p', 'P') RETURNING id`).Scan(&projectID))
	require.NoError(t, tx.QueryRow(ctx, `INSERT INTO environments (project_id, name, kind, cluster) VALUES ($1, 'dev', 'dev', 'c') RETURNING id`, projectID).Scan(&envID))
	_, err := tx.Exec(ctx, `INSERT INTO deployments (project_id, environment_id, deployment_method) VALUES ($1, $2, 'ftp')`, projectID, envID)
	require.ErrorContains(t, err, "deployments_deployment_method_check")
}
