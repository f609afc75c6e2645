package handlers_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/gittest"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// Credentials of the HTTPS Git server.
const (
	gitUser = "deployer"
	gitPass = "s3cr3t-api-token-51d0c2aa"
)

// syncBuffer collects the log output of the receiver and the worker.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// gitopsBundle is a seeded database, a receiver and a worker wired like cmd/receiver and
// cmd/worker (secret store, Git caches, push locks), an HTTPS Git server with basic auth
// holding the fleet repository, and the logs of it all.
type gitopsBundle struct {
	testBundle
	alice   string // the API token of alice, a maintainer of the seeded project
	gitURL  string
	gitRoot string
	ca      []byte
	secrets *secrets.FileStore
	logs    *syncBuffer
}

func setupGitops(t *testing.T, withWorker bool) *gitopsBundle {
	t.Helper()
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	seed := storetest.Seed(t, st, pool)
	// The seeded repository is not a GitOps target here; the test connects its own. Production
	// deploys need no approval unless a test asks for them.
	_, err := pool.Exec(ctx, `UPDATE repositories SET gitops_enabled = false WHERE id = $1`, seed.Repo.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE environments SET gitops_config = '{"requiredApprovals": 0}' WHERE id = $1`, seed.Env.ID)
	require.NoError(t, err)
	sec, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	logs := &syncBuffer{}
	log := zerolog.New(logs).With().Timestamp().Logger()

	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logging.Slog(log)})
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: log, Git: gitops.NewWriter(t.TempDir()), Secrets: sec,
		WebhookTokens: map[string][]byte{storetest.Cluster: prodKey}})
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)

	b := &gitopsBundle{testBundle: testBundle{pool: pool, st: st, seed: seed, h: h, srv: srv}, secrets: sec, logs: logs}
	b.alice = b.token(t, seed.User.ID, nil)
	b.startGitServer(t)
	if withWorker {
		locks, err := store.NewPushLocks(ctx, pool, jobs.GitWorkers)
		require.NoError(t, err)
		git := gitops.NewWriter(t.TempDir())
		workers := river.NewWorkers()
		require.NoError(t, jobs.Register(workers, jobs.Deps{
			Store: st, Git: git, Secrets: sec, PushLocks: locks, IsAncestor: jobs.GitAncestor(st, git, sec),
			Committer: gitops.Signature{Name: "fluxbridge", Email: "bot@fluxbridge.test"},
		}))
		wc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
			Queues: jobs.Queues(), Workers: workers, FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
			Logger: logging.Slog(log), Middleware: jobs.Middleware(log, nil),
		})
		require.NoError(t, err)
		require.NoError(t, wc.Start(ctx))
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = wc.Stop(sctx)
			locks.Close()
		})
	}
	return b
}

// startGitServer serves the fleet repository over HTTPS with basic auth.
func (b *gitopsBundle) startGitServer(t *testing.T) {
	t.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	gs.AutoCreate().Auth(gitUser, gitPass)
	cert, key := selfSignedCert(t)
	require.NoError(t, gs.StartHTTPS(cert, key, cert, "127.0.0.1"))
	t.Cleanup(func() { gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	b.gitURL, b.gitRoot, b.ca = gs.HTTPAddress()+"/fleet.git", gs.Root(), cert
	work := t.TempDir()
	gitCLI(t, work, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(work, "README.md"), []byte("fleet\n"), 0o644))
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "-q", "-m", "initial")
	gitCLI(t, gs.Root(), "init", "-q", "--bare", "-b", "main", "fleet.git")
	gitCLI(t, work, "push", "-q", filepath.Join(gs.Root(), "fleet.git"), "main")
}

// git runs the git CLI on the server's bare fleet repository.
func (b *gitopsBundle) git(t *testing.T, args ...string) string {
	t.Helper()
	return gitCLI(t, filepath.Join(b.gitRoot, "fleet.git"), args...)
}

// call sends a JSON request as alice and decodes the JSON answer.
func (b *gitopsBundle) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+"/api/v1/projects/webapp"+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.alice)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode, decodeBody(t, resp.Body)
}

// connect connects the fleet repository with GitOps on branch main under path clusters.
func (b *gitopsBundle) connect(t *testing.T, password string) int64 {
	t.Helper()
	status, body := b.call(t, http.MethodPost, "/repositories", map[string]any{
		"name": "fleet", "url": b.gitURL,
		"auth":   map[string]any{"type": "https", "username": gitUser, "password": password, "ca_cert": string(b.ca)},
		"gitops": map[string]any{"enabled": true, "branch": "main", "path": "clusters"},
	})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	return int64(body["id"].(float64))
}

// waitStatus polls the deployment API until deployment id leaves pending.
func (b *gitopsBundle) waitStatus(t *testing.T, id int64) map[string]any {
	t.Helper()
	var d map[string]any
	require.Eventually(t, func() bool {
		_, d = b.call(t, http.MethodGet, "/deployments/"+itoa(id), nil)
		return d["status"] != store.DeployPending
	}, 30*time.Second, 50*time.Millisecond)
	return d
}

func itoa(id int64) string { return fmt.Sprint(id) }

// testKey returns a fresh ed25519 private key in OpenSSH PEM format.
func testKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	return string(pem.EncodeToMemory(block))
}

// gitCLI runs the git CLI in dir and returns its trimmed output.
func gitCLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gittest.CLI(tb, dir, args...)
}

// selfSignedCert returns a PEM certificate and key for 127.0.0.1 that is its own CA.
func selfSignedCert(tb testing.TB) (certPEM, keyPEM []byte) { return gittest.MustSelfSignedCert(tb) }
