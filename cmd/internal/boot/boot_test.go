package boot_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/cmd/internal/boot"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// TestPoolSizes: the worker's pool holds a connection for every River worker and River's own
// (pgx's default is max(4, CPUs)), the receiver's its default; DATABASE_MAX_CONNS and a
// pool_max_conns in the URL override them.
func TestPoolSizes(t *testing.T) {
	url := storetest.NewDB(t).Config().ConnString()
	sep := "?"
	for _, c := range url {
		if c == '?' {
			sep = "&"
		}
	}
	for _, tt := range []struct {
		name, svc string
		env       map[string]string
		want      int32
	}{
		{"worker", "worker", nil, int32(jobs.PoolSize())},
		{"receiver", "receiver", nil, config.DefaultReceiverConns},
		{"configured", "worker", map[string]string{"DATABASE_MAX_CONNS": "7"}, 7},
		{"in the URL", "receiver", map[string]string{"DATABASE_URL": url + sep + "pool_max_conns=3", "DATABASE_MAX_CONNS": "7"}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": url, "MIGRATE_ON_START": "false", "LOG_LEVEL": "warn"}
			for k, v := range tt.env {
				env[k] = v
			}
			p, err := boot.Start(context.Background(), func(k string) string { return env[k] }, tt.svc, false)
			require.NoError(t, err)
			defer p.Pool.Close()
			require.Equal(t, tt.want, p.Pool.Config().MaxConns)
		})
	}
	require.Greater(t, jobs.PoolSize(), 44, "the 44 River workers and River's own")
}
