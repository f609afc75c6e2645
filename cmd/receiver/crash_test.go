package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

const hookToken = "crash-test-webhook-token-0123456789"

// TestKill9UnderWebhookLoad: the receiver binary is killed with SIGKILL while eight senders
// post events. Every event it answered 202 has its row and its job; the senders then retry
// everything (as notification-controller does) against a restarted receiver, and each event
// ends up stored once with one job.
func TestKill9UnderWebhookLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the receiver binary")
	}
	bin := filepath.Join(t.TempDir(), "receiver")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	pool := storetest.NewDB(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fluxbridge.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("clusters:\n  - name: prod-eu\n    webhookToken: "+hookToken+"\n"), 0o600))
	addr := freeAddr(t)
	env := append(os.Environ(), "FLUXBRIDGE_CONFIG="+cfg, "DATABASE_URL="+pool.Config().ConnString(), "LISTEN_ADDR="+addr,
		"MIGRATE_ON_START=false", "SECRETS_DIR="+filepath.Join(dir, "secrets"), "GIT_CACHE_DIR="+filepath.Join(dir, "git"), "LOG_LEVEL=warn")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env, cmd.Stderr = env, os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		require.Eventually(t, func() bool {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == http.StatusOK
		}, 20*time.Second, 20*time.Millisecond)
		return cmd
	}

	const events = 3000
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
			"timestamp": time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)})
	}
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(body []byte) (int, int64, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/hooks/flux/prod-eu", bytes.NewReader(body))
		req.Header.Set("X-Signature", fluxeventtest.SignSHA256(body, []byte(hookToken)))
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		var out struct {
			EventID int64 `json:"event_id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out.EventID, nil
	}

	// Eight senders until the kill; the kill comes after a few hundred acknowledgements.
	cmd := start()
	var (
		mu    sync.Mutex
		acked = map[int64]bool{}
		next  = make(chan int)
		wg    sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				status, id, err := post(bodies[i])
				if err == nil && status == http.StatusAccepted && id != 0 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		})
	}
	killed := false
	for i := range events {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if !killed && n >= 300 {
			require.NoError(t, cmd.Process.Signal(os.Kill))
			killed = true
		}
		next <- i
		if killed && i > n+200 {
			break // the rest would only fail to connect
		}
	}
	close(next)
	wg.Wait()
	_, _ = cmd.Process.Wait()
	require.True(t, killed)

	ctx := context.Background()
	var missing, jobless int
	ids := make([]int64, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) a(id) WHERE NOT EXISTS (SELECT 1 FROM flux_events e WHERE e.id = a.id)`, ids).Scan(&missing))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM unnest($1::bigint[]) a(id) WHERE NOT EXISTS (
		SELECT 1 FROM river_job j WHERE j.kind = 'flux_event' AND (j.args->>'event_id')::bigint = a.id)`, ids).Scan(&jobless))
	t.Logf("killed after %d acknowledged events: %d without a row, %d without a job", len(acked), missing, jobless)
	require.Zero(t, missing, "every 202 has its row")
	require.Zero(t, jobless, "every 202 has its job")

	// Retry everything against a restarted receiver: each event is stored once, with one job.
	start()
	for i := range events {
		status, _, err := post(bodies[i])
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status)
	}
	var rows, jobs int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM flux_events`).Scan(&rows))
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'flux_event'`).Scan(&jobs))
	require.Equal(t, events, rows)
	require.Equal(t, events, jobs)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return fmt.Sprint(ln.Addr())
}
