package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/pgembed"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// buildReceiver builds cmd/receiver once per test binary.
func buildReceiver(t *testing.T) string { return buildBinary(t, "../../cmd/receiver") }

const chaosHookToken = "chaos-test-webhook-token-0123456789"

// TestPostgresRestartUnderLoad stops Postgres (a server of the test's own) while four senders
// post Flux events to the receiver binary, and starts it again on the same data after the
// outage (chaosOutage). While it is down the receiver answers 503 with Retry-After (never 500, never a 202
// it cannot keep); afterwards it accepts again without a restart. Every event it acknowledged
// has its row and is worked by the worker binary, whose River client came back by itself, and
// a deploy made after the restart is pushed: the worker's push lock pool reconnected.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a Postgres server under the receiver and worker binaries")
	}
	recvBin, workBin := buildReceiver(t), buildWorker(t)
	ctx := context.Background()
	dir := t.TempDir()
	// The server runs as the postgres user, which must reach its directory.
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	pgDir := filepath.Join(dir, "pg")
	pg, err := pgembed.Start(ctx, pgembed.Options{DataDir: pgDir, Database: "chaos"})
	require.NoError(t, err)
	port := pg.Port()
	t.Cleanup(func() { _ = pg.Stop() })
	dbURL := pg.URL("chaos")

	cfg := filepath.Join(dir, "fluxbridge.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("clusters:\n  - name: prod-eu\n    webhookToken: "+chaosHookToken+"\n"), 0o600))
	recvAddr := freeAddr(t)
	env := append(os.Environ(), "FLUXBRIDGE_CONFIG="+cfg, "DATABASE_URL="+dbURL, "SECRETS_DIR="+filepath.Join(dir, "secrets"),
		"GIT_CACHE_DIR="+filepath.Join(dir, "git"), "LOG_LEVEL=error")
	run := func(bin string, extra ...string) {
		cmd := exec.Command(bin)
		cmd.Env, cmd.Stderr = append(env, extra...), os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	run(recvBin, "LISTEN_ADDR="+recvAddr, "MIGRATE_ON_START=true")
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + recvAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond)
	run(workBin, "METRICS_ADDR="+freeAddr(t), "MIGRATE_ON_START=false")

	// A repository on a live Git server, for the deploy after the restart.
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	st := store.New(pool)
	seed := storetest.Seed(t, st, pool)
	srv := newGitServer(t, true)
	sec, err := secrets.NewFileStore(filepath.Join(dir, "secrets"))
	require.NoError(t, err)
	ref := secrets.NewRef("repo-webapp")
	require.NoError(t, sec.Put(ctx, ref, srv.creds))
	_, err = pool.Exec(ctx, `UPDATE repositories SET url = $2, auth_type = 'https', credential_ref = $3 WHERE id = $1`, seed.Repo.ID, srv.url, ref)
	require.NoError(t, err)

	// Four senders, each event once until it is acknowledged (as notification-controller
	// retries), until told to stop.
	client := &http.Client{Timeout: 5 * time.Second}
	var (
		mu                 sync.Mutex
		acked              = map[int64]bool{}
		unavailable, other atomic.Int64
		retryAfter         atomic.Bool
		seq                atomic.Int64
		stop               = make(chan struct{})
		wg                 sync.WaitGroup
	)
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				body := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
					"timestamp": base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)})
				for {
					req, _ := http.NewRequest(http.MethodPost, "http://"+recvAddr+"/hooks/flux/prod-eu", bytes.NewReader(body))
					req.Header.Set("X-Signature", fluxeventtest.SignSHA256(body, []byte(chaosHookToken)))
					resp, err := client.Do(req)
					if err != nil {
						other.Add(1)
						time.Sleep(50 * time.Millisecond)
						continue
					}
					var out struct {
						EventID int64 `json:"event_id"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						mu.Lock()
						acked[out.EventID] = true
						mu.Unlock()
						break
					}
					if resp.StatusCode == http.StatusServiceUnavailable {
						unavailable.Add(1)
						if resp.Header.Get("Retry-After") != "" {
							retryAfter.Store(true)
						}
					} else {
						other.Add(1)
					}
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}
		})
	}
	ackedN := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	require.Eventually(t, func() bool { return ackedN() >= 300 }, time.Minute, 10*time.Millisecond)

	// Postgres goes away (3 s in make test, 60 s in make chaos).
	require.NoError(t, pg.Stop())
	down := time.Now()
	beforeDown := ackedN()
	time.Sleep(chaosOutage(t))
	pg, err = pgembed.Start(ctx, pgembed.Options{DataDir: pgDir, Port: port, Database: "chaos"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Stop() })
	upAt := time.Now()
	require.Eventually(t, func() bool { return ackedN() >= beforeDown+300 }, time.Minute, 10*time.Millisecond,
		"the receiver accepts again once Postgres is back")
	recovered := time.Since(upAt)
	close(stop)
	wg.Wait()
	require.Positive(t, unavailable.Load(), "503s while Postgres is down")
	require.True(t, retryAfter.Load(), "with Retry-After")
	require.Zero(t, other.Load(), "no 500s, no refused connections")

	ids := make([]int64, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	var missing int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM flux_events e WHERE e.id = a.id)`, ids).Scan(&missing))
	require.Zero(t, missing, "every 202 has its row")
	require.Eventually(t, func() bool {
		var open int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM flux_events WHERE processed_at IS NULL`).Scan(&open))
		return open == 0
	}, 2*time.Minute, 100*time.Millisecond, "the worker works every event after the restart")

	// A deploy after the restart is pushed: River and the push lock pool reconnected.
	f := &pushFixture{testBundle: &testBundle{pool: pool, st: st, seed: seed}, srv: srv}
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.4.2", 2))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, jobs.CommitPushArgs{DeploymentID: d.ID}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.deployment(t, d.ID).Status == store.DeployPushed }, time.Minute, 50*time.Millisecond)
	t.Logf("Postgres down %s under load: %d events acknowledged, %d answered 503 meanwhile, accepting again %s after it was back; every event worked, a deploy pushed after",
		upAt.Sub(down).Round(time.Millisecond), len(ids), unavailable.Load(), recovered.Round(time.Millisecond))
}
