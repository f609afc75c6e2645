package pgembed_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/pgembed"
)

func TestThrowawayCluster(t *testing.T) {
	ctx := context.Background()
	srv, err := pgembed.Start(ctx, pgembed.Options{})
	require.NoError(t, err)
	dir := srv.DataDir()
	conn, err := pgx.Connect(ctx, srv.URL(""))
	require.NoError(t, err)
	var db string
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_database()").Scan(&db))
	require.Equal(t, "fluxbridge", db)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, srv.Stop())
	_, err = os.Stat(filepath.Dir(dir))
	require.ErrorIs(t, err, os.ErrNotExist, "a throwaway cluster is removed")
}

func TestPersistentClusterKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "pg")
	if os.Geteuid() == 0 {
		// The server runs as the postgres user, which must be able to reach the directory.
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
		require.NoError(t, os.Chmod(filepath.Dir(filepath.Dir(dir)), 0o755))
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, Database: "keep"})
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, srv.URL(""))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	require.NoError(t, srv.Stop())

	srv, err = pgembed.Start(ctx, pgembed.Options{DataDir: dir, Database: "keep"})
	require.NoError(t, err)
	defer srv.Stop()
	conn, err = pgx.Connect(ctx, srv.URL(""))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v int
	require.NoError(t, conn.QueryRow(ctx, "SELECT v FROM t").Scan(&v))
	require.Equal(t, 42, v)
}
