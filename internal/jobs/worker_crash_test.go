package jobs_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// builtBinaries are the commands built once per test binary, by package path.
var builtBinaries sync.Map // string → func() (string, error)

// buildBinary builds the command in pkg (relative to this package) once per test binary and
// returns its path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	once, _ := builtBinaries.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "fluxbridge-"+filepath.Base(pkg)+"-")
		if err != nil {
			return "", err
		}
		bin := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-buildvcs=false", "-o", bin, pkg)
		cmd.Stderr = os.Stderr
		return bin, cmd.Run()
	}))
	bin, err := once.(func() (string, error))()
	require.NoError(t, err)
	return bin
}

// buildWorker builds cmd/worker once per test binary.
func buildWorker(t *testing.T) string { return buildBinary(t, "../../cmd/worker") }

// pushGate holds the worker's push (git-receive-pack) at a point of the test's choosing: before
// the server sees it, or after the server has updated the branch but before the worker hears so.
type pushGate struct {
	after   bool
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *pushGate) middleware(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
			h.ServeHTTP(w, r)
			return
		}
		first := false
		g.once.Do(func() { first = true })
		if !first {
			h.ServeHTTP(w, r)
			return
		}
		if g.after {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r) // the branch moves; the answer is held back
		}
		close(g.arrived)
		<-g.release
		http.Error(w, "gone", http.StatusServiceUnavailable)
	})
}

// TestKill9WorkerMidPush kills the worker process with SIGKILL in the middle of a deploy's
// push — before the Git server received it, and after the server updated the branch but
// before the worker heard back — and starts a new one. Each time the deploy ends pushed with
// exactly one new commit on the branch, and the deployment records that commit. (River's
// rescuer retries a job whose worker died after RescueStuckJobsAfter, 12 minutes; the test
// makes the job available at once, as the rescuer would then.)
func TestKill9WorkerMidPush(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the worker binary")
	}
	bin := buildWorker(t)
	for _, after := range []bool{false, true} {
		name := map[bool]string{false: "before the push", true: "after the push"}[after]
		t.Run(name, func(t *testing.T) {
			gate := &pushGate{after: after, arrived: make(chan struct{}), release: make(chan struct{})}
			srv := newGitServer(t, true, gate.middleware)
			pool := storetest.NewDB(t)
			st := store.New(pool)
			seed := storetest.Seed(t, st, pool)
			ctx := context.Background()
			dir := t.TempDir()
			sec, err := secrets.NewFileStore(filepath.Join(dir, "secrets"))
			require.NoError(t, err)
			ref := secrets.NewRef("repo-webapp")
			require.NoError(t, sec.Put(ctx, ref, srv.creds))
			_, err = pool.Exec(ctx, `UPDATE repositories SET url = $2, auth_type = 'https', credential_ref = $3 WHERE id = $1`, seed.Repo.ID, srv.url, ref)
			require.NoError(t, err)
			f := &pushFixture{testBundle: &testBundle{pool: pool, st: st, seed: seed}, srv: srv}
			d := f.deploy(t, manifest.KindMicroservice, apiForm("1.4.2", 2))
			rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
			require.NoError(t, err)
			_, err = rc.Insert(ctx, jobs.CommitPushArgs{DeploymentID: d.ID}, nil)
			require.NoError(t, err)
			before := f.commits(t)

			start := func() *exec.Cmd {
				addr := freeAddr(t)
				cmd := exec.Command(bin)
				cmd.Env = append(os.Environ(), "DATABASE_URL="+pool.Config().ConnString(), "MIGRATE_ON_START=false",
					"SECRETS_DIR="+filepath.Join(dir, "secrets"), "GIT_CACHE_DIR="+filepath.Join(dir, "git"),
					"METRICS_ADDR="+addr, "LOG_LEVEL=warn", "FLUXBRIDGE_CONFIG=")
				cmd.Stderr = os.Stderr
				require.NoError(t, cmd.Start())
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				return cmd
			}
			w := start()
			select {
			case <-gate.arrived:
			case <-time.After(time.Minute):
				t.Fatal("the worker never pushed")
			}
			require.NoError(t, w.Process.Signal(os.Kill))
			_, _ = w.Process.Wait()
			close(gate.release)
			want := before
			if after {
				want++
			}
			require.Equal(t, want, f.commits(t), "what the server has when the worker dies")
			require.Equal(t, store.DeployPending, f.deployment(t, d.ID).Status, "nothing recorded by the dead worker")

			// River's rescuer, 12 minutes on.
			tag, err := pool.Exec(ctx, `UPDATE river_job SET state = 'available', scheduled_at = now() WHERE kind = 'commit_push' AND state = 'running'`)
			require.NoError(t, err)
			require.EqualValues(t, 1, tag.RowsAffected())
			start()
			require.Eventually(t, func() bool { return f.deployment(t, d.ID).Status == store.DeployPushed }, time.Minute, 50*time.Millisecond)
			got := f.deployment(t, d.ID)
			require.Equal(t, before+1, f.commits(t), "exactly one commit for the deploy")
			require.Equal(t, srv.git(t, "rev-parse", "main"), got.CommitSHA)
			require.Contains(t, srv.git(t, "log", "-1", "--format=%B", "main"), fmt.Sprintf("Deployment-Id: %d", d.ID))
			if after {
				require.Contains(t, got.Message, "found after an interrupted attempt")
			}
			t.Logf("%s: deployment %d pushed as %.12s after a restart", name, d.ID, got.CommitSHA)
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
