package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// TestMain silences gitkit, which logs every request of the Git test servers through the
// standard logger, and provides Postgres.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	storetest.Main(m)
}

var (
	prodKey    = []byte("prod-eu-webhook-token-0123456789")
	stagingKey = []byte("staging-webhook-token-9876543210")
)

type testBundle struct {
	pool  *pgxpool.Pool
	st    *store.Store
	seed  *storetest.Seeded
	h     *handlers.Handler
	srv   *httptest.Server
	admin string // the API token of user "root", a platform admin
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	t.Parallel()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	sec, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{
		Store: st, River: rc, Logger: zerolog.Nop(),
		WebhookTokens: map[string][]byte{storetest.Cluster: prodKey, "staging": stagingKey},
		Git:           gitops.NewWriter(t.TempDir()), Secrets: sec, Clusters: unreachableClusters(t),
	})
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)
	b := &testBundle{pool: pool, st: st, seed: storetest.Seed(t, st, pool), h: h, srv: srv}
	_, b.admin = b.user(t, "root", "admin")
	return b
}

// unreachableClusters is a registry of the seeded clusters (prod-eu and staging) whose
// kubeconfigs point at a closed port: enough to create resources (no call is made), while
// live views answer that the cluster does not answer. The Kubernetes side is tested against
// real apiservers in internal/fluxcontrol.
func unreachableClusters(t *testing.T) *cluster.Registry {
	t.Helper()
	return clustersAt(t, "127.0.0.1:1", storetest.Cluster, "staging")
}

// clustersAt is a registry of the named clusters, all with an apiserver at addr.
func clustersAt(t *testing.T, addr string, names ...string) *cluster.Registry {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://`+addr+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600))
	scheme, err := fluxscheme.New()
	require.NoError(t, err)
	specs := make([]cluster.Spec, len(names))
	for i, n := range names {
		specs[i] = cluster.Spec{Name: n, Kubeconfig: kubeconfig}
	}
	reg, err := cluster.NewRegistry(specs, scheme)
	require.NoError(t, err)
	return reg
}

// user creates a user and an API token for them, and returns both. role is their role in the
// seeded project, "" for none, or "admin" for a platform admin who is not a member.
func (b *testBundle) user(t *testing.T, name, role string) (*store.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := b.st.CreateUser(ctx, b.pool, store.User{Username: name, DisplayName: strings.ToUpper(name[:1]) + name[1:], IsAdmin: role == "admin"})
	require.NoError(t, err)
	if role != "" && role != "admin" {
		require.NoError(t, b.st.AddMember(ctx, b.pool, b.seed.Project.ID, u.ID, role))
	}
	return u, b.token(t, u.ID, nil)
}

// token issues an API token for a user.
func (b *testBundle) token(t *testing.T, userID int64, expires *time.Time) string {
	t.Helper()
	tok, hash, err := auth.NewToken()
	require.NoError(t, err)
	_, err = b.st.CreateToken(context.Background(), b.pool, store.NewAPIToken{
		UserID: userID, Name: "test", Hash: hash, Prefix: auth.DisplayPrefix(tok), ExpiresAt: expires,
	})
	require.NoError(t, err)
	return tok
}

// do sends an API request with token ("" for none). body is JSON-encoded unless it is a
// string, which is sent as is; nil sends no body.
func (b *testBundle) do(t *testing.T, token, method, path string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp, decodeBody(t, resp.Body)
}

// startWorker runs a River client that works jobs on the bundle's database until the test ends.
func (b *testBundle) startWorker(t *testing.T) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, jobs.Register(workers, jobs.Deps{Store: b.st}))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues: jobs.Queues(), Workers: workers, FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
		Logger: nil,
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rc.Stop(ctx)
	})
	return rc
}

func (b *testBundle) post(t *testing.T, path string, body []byte, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Gotk-Component", "kustomize-controller")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp, decodeBody(t, resp.Body)
}

// get reads an API path as the admin (any other path without credentials).
func (b *testBundle) get(t *testing.T, path string) (*http.Response, map[string]any) {
	t.Helper()
	if !strings.HasPrefix(path, "/api/") {
		return b.do(t, "", http.MethodGet, path, nil)
	}
	return b.do(t, b.admin, http.MethodGet, path, nil)
}

func decodeBody(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	raw, err := io.ReadAll(r)
	require.NoError(t, err)
	out := map[string]any{}
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return out
}

func (b *testBundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func (b *testBundle) events(t *testing.T) int { return b.count(t, "SELECT count(*) FROM flux_events") }
func (b *testBundle) jobs(t *testing.T) int   { return b.count(t, "SELECT count(*) FROM river_job") }

// jobsOf counts the River jobs of one kind.
func (b *testBundle) jobsOf(t *testing.T, kind string) int {
	return b.count(t, "SELECT count(*) FROM river_job WHERE kind = $1", kind)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	return string(raw)
}
