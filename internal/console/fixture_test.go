package console_test

import (
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/console"
	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/gittest"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Passwords of the seeded users.
const (
	alicePassword  = "alice-console-pw-1"
	victorPassword = "victor-console-pw-1"
	gitUser        = "deployer"
	gitPass        = "s3cr3t-api-token-51d0c2aa"
)

// logBuffer collects the receiver's and the worker's logs, shown when a test fails.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// bundle is a receiver with the console, a worker and the change feed on a seeded database,
// like cmd/receiver and cmd/worker wire them, and a real HTTPS Git server holding the fleet
// repository the seeded project deploys to.
type bundle struct {
	st     *store.Store
	seed   *storetest.Seeded
	srv    *httptest.Server
	token  string // alice's API token
	victor *store.User
	gitCA  []byte // the Git server's certificate, its own CA (withGit)
}

func setup(t testing.TB, withGit bool) *bundle {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pool := storetest.NewDB(t)
	st := store.New(pool)
	seed := storetest.Seed(t, st, pool)
	_, err := pool.Exec(ctx, `UPDATE repositories SET gitops_enabled = false WHERE id = $1`, seed.Repo.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE environments SET gitops_config = '{"requiredApprovals": 0}' WHERE id = $1`, seed.Env.ID)
	require.NoError(t, err)
	setPassword(t, st, seed.User.ID, alicePassword)
	victor, err := st.CreateUser(ctx, pool, store.User{Username: "victor", DisplayName: "Victor Viewer"})
	require.NoError(t, err)
	require.NoError(t, st.AddMember(ctx, pool, seed.Project.ID, victor.ID, "viewer"))
	setPassword(t, st, victor.ID, victorPassword)

	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", logs.b.String())
		}
	})
	log := zerolog.New(logs).With().Timestamp().Logger()
	sec, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logging.Slog(log)})
	require.NoError(t, err)
	hub := feed.NewHub(pool, log)
	hub.PollInterval = 200 * time.Millisecond
	go func() { _ = hub.Run(ctx) }()
	sessions := &auth.Sessions{Store: st}
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: log, Git: gitops.NewWriter(t.TempDir()), Secrets: sec,
		Authenticator: auth.Chain{auth.NewTokenAuthenticator(st), sessions}, Feed: hub})
	pages, err := console.New(console.Deps{Core: h, Sessions: sessions, Logger: log})
	require.NoError(t, err)
	srv := httptest.NewServer(h.Routes(pages))
	t.Cleanup(srv.Close)
	b := &bundle{st: st, seed: seed, srv: srv, victor: victor}
	b.token = apiToken(t, st, seed.User.ID)

	if withGit {
		startWorker(t, ctx, st, sec, log)
		gitURL, ca := startGitServer(t)
		b.gitCA = ca
		status, body := b.api(t, http.MethodPost, "/projects/webapp/repositories", map[string]any{
			"name": "fleet", "url": gitURL,
			"auth":   map[string]any{"type": "https", "username": gitUser, "password": gitPass, "ca_cert": string(ca)},
			"gitops": map[string]any{"enabled": true, "branch": "main", "path": "clusters"},
		})
		require.Equal(t, http.StatusCreated, status, "%v", body)
	}
	return b
}

func setPassword(t testing.TB, st *store.Store, userID int64, pw string) {
	t.Helper()
	hash, err := auth.HashPassword(pw)
	require.NoError(t, err)
	require.NoError(t, st.SetPasswordHash(context.Background(), st.Pool(), userID, hash))
}

func apiToken(t testing.TB, st *store.Store, userID int64) string {
	t.Helper()
	tok, hash, err := auth.NewToken()
	require.NoError(t, err)
	_, err = st.CreateToken(context.Background(), st.Pool(), store.NewAPIToken{UserID: userID, Name: "test", Hash: hash, Prefix: auth.DisplayPrefix(tok)})
	require.NoError(t, err)
	return tok
}

// api calls the JSON API as alice.
func (b *bundle) api(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var raw []byte
	if body != nil {
		var err error
		raw, err = json.Marshal(body)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(method, b.srv.URL+"/api/v1"+path, bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func startWorker(t testing.TB, ctx context.Context, st *store.Store, sec secrets.Store, log zerolog.Logger) {
	t.Helper()
	locks, err := store.NewPushLocks(ctx, st.Pool(), jobs.GitWorkers)
	require.NoError(t, err)
	git := gitops.NewWriter(t.TempDir())
	workers := river.NewWorkers()
	require.NoError(t, jobs.Register(workers, jobs.Deps{
		Store: st, Git: git, Secrets: sec, PushLocks: locks, IsAncestor: jobs.GitAncestor(st, git, sec),
		Committer: gitops.Signature{Name: "fluxbridge", Email: "bot@fluxbridge.test"},
	}))
	wc, err := river.NewClient(riverpgxv5.New(st.Pool()), &river.Config{
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

// startGitServer serves a fleet repository over HTTPS with basic auth.
func startGitServer(t testing.TB) (url string, ca []byte) {
	t.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	gs.AutoCreate().Auth(gitUser, gitPass)
	cert, key := gittest.MustSelfSignedCert(t)
	require.NoError(t, gs.StartHTTPS(cert, key, cert, "127.0.0.1"))
	t.Cleanup(func() { gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	seedFleet(t, gs, "fleet\n")
	return gs.HTTPAddress() + "/fleet.git", cert
}

// seedFleet creates the fleet repository on gs's disk with one commit on main: a README.
func seedFleet(t testing.TB, gs *gittestserver.GitServer, readme string) {
	t.Helper()
	work := t.TempDir()
	gittest.CLI(t, work, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(work, "README.md"), []byte(readme), 0o644))
	gittest.CLI(t, work, "add", "-A")
	gittest.CLI(t, work, "commit", "-q", "-m", "initial")
	gittest.CLI(t, gs.Root(), "init", "-q", "--bare", "-b", "main", "fleet.git")
	gittest.CLI(t, work, "push", "-q", filepath.Join(gs.Root(), "fleet.git"), "main")
}

// startSSHGitServer serves a fleet repository over SSH, accepting one client key, and returns
// its URL, the credentials for it (identity, known_hosts) and the server.
func startSSHGitServer(t testing.TB) (string, map[string][]byte, *gittestserver.GitServer) {
	t.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	gs.AutoCreate().Auth(gitUser, gitPass).KeyDir(t.TempDir())
	creds := gittest.StartSSH(t, gs)
	seedFleet(t, gs, "fleet over ssh\n")
	return gs.SSHAddress() + "/fleet.git", creds, gs
}
