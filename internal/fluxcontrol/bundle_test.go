package fluxcontrol_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/faultnet"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/internal/watch"
)

const (
	credNamespace = "fluxbridge-credentials"
	webhookToken  = "east-webhook-token-0123456789abcdef"
	// waitFor bounds how long a test waits for a job or the watch.
	waitFor = 20 * time.Second
	poll    = 20 * time.Millisecond
)

var nsSeq atomic.Int64

// bundle is one test's fluxbridge: its own database, receiver, River worker and watch, on the
// shared east and west clusters.
type bundle struct {
	pool    *pgxpool.Pool
	st      *store.Store
	srv     *httptest.Server
	reg     *cluster.Registry
	secrets *secrets.KubeStore
	token   string // a project maintainer's API token
	project *store.Project
	staging *store.Environment // east, auto sync
	prod    *store.Environment // west, manual sync
	repo    *store.Repository  // with HTTPS credentials in the credential store
	ns      string             // a namespace of this test's own
	// workerMetrics are the worker's (the receiver serves its own on /metrics).
	workerMetrics *metrics.Metrics

	mu        sync.Mutex
	leading   map[string]bool // clusters whose watch setup's watch leads
	stopWatch func()          // stops setup's watch and waits for it
	westProxy *faultnet.Proxy // setupOpts.westProxy
}

// setupOpts vary setup.
type setupOpts struct {
	// westProxy reaches west's apiserver through a proxy the test can take down (b.westProxy),
	// and retries failed jobs every second.
	westProxy bool
}

func setup(t *testing.T) *bundle { return setupWith(t, setupOpts{}) }

func setupWith(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	ctx := context.Background()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	b := &bundle{pool: pool, st: st, ns: fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))}

	var err error
	westKubeconfig := west.KubeconfigPath()
	var retry river.ClientRetryPolicy
	if o.westProxy {
		westKubeconfig, b.westProxy = proxiedKubeconfig(t, west)
		retry = everySecond{}
	}
	b.reg, err = cluster.NewRegistry([]cluster.Spec{
		{Name: "east", Kubeconfig: east.KubeconfigPath(), FluxNamespace: "flux-system"},
		{Name: "west", Kubeconfig: westKubeconfig, FluxNamespace: "flux-system"},
		{Name: "edge", FluxNamespace: "flux-system"}, // webhook only
	}, east.Scheme)
	require.NoError(t, err)
	b.secrets = secrets.NewKubeStoreWithClient(east.Client, credNamespace)

	b.project, err = st.CreateProject(ctx, pool, store.Project{Slug: "shop", Name: "Shop"})
	require.NoError(t, err)
	b.staging, err = st.CreateEnvironment(ctx, pool, store.Environment{ProjectID: b.project.ID, Name: "staging", Kind: "staging", Cluster: "east",
		GitopsConfig: json.RawMessage(`{"syncPolicy":"auto","branch":"staging","path":"deploy/staging","namespaces":["` + b.ns + `"]}`)})
	require.NoError(t, err)
	b.prod, err = st.CreateEnvironment(ctx, pool, store.Environment{ProjectID: b.project.ID, Name: "production", Kind: "prod", Cluster: "west",
		GitopsConfig: json.RawMessage(`{"syncPolicy":"manual","branch":"main","path":"deploy/prod","requiredApprovals":0,"namespaces":["` + b.ns + `"]}`)})
	require.NoError(t, err)
	b.token = b.member(t, "mia", "maintainer")
	credRef := secrets.NewRef("repo-shop")
	require.NoError(t, b.secrets.Put(ctx, credRef, map[string][]byte{"username": []byte("bot"), "password": []byte("s3cret")}))
	b.repo, err = st.CreateRepository(ctx, pool, store.NewRepository{ProjectID: b.project.ID, Name: "shop",
		URL: "https://git.example.com/acme/shop.git", AuthType: "https", CredentialRef: credRef, GitopsEnabled: true})
	require.NoError(t, err)

	workers := river.NewWorkers()
	b.workerMetrics = metrics.New()
	require.NoError(t, jobs.Register(workers, jobs.Deps{Store: st, Clusters: b.reg, Secrets: b.secrets, ReconcilePoll: 50 * time.Millisecond, Metrics: b.workerMetrics}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: jobs.Queues(), Workers: workers, FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 20 * time.Millisecond,
		RetryPolicy: retry,
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rc.Stop(sctx)
	})

	// The receiver's client is insert-only, as cmd/receiver's: it may enqueue kinds this
	// worker does not run (commit_push, bootstrap_environment: no Git here).
	insert, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{Store: st, River: insert, Logger: zerolog.Nop(), Clusters: b.reg,
		WebhookTokens: map[string][]byte{"east": []byte(webhookToken), "west": []byte(webhookToken)}})
	b.srv = httptest.NewServer(h.Routes())
	t.Cleanup(b.srv.Close)

	b.leading = map[string]bool{}
	b.stopWatch = b.startWatch(t, func(c string, on bool) { b.mu.Lock(); b.leading[c] = on; b.mu.Unlock() })
	require.Eventually(t, func() bool { return b.leads("east") && b.leads("west") }, waitFor, poll, "the watch leads both clusters")
	return b
}

// member adds a user with role in the project and returns an API token of theirs.
func (b *bundle) member(t *testing.T, name, role string) string {
	t.Helper()
	ctx := context.Background()
	u, err := b.st.CreateUser(ctx, b.pool, store.User{Username: name})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(ctx, b.pool, b.project.ID, u.ID, role))
	token, hash, err := auth.NewToken()
	require.NoError(t, err)
	_, err = b.st.CreateToken(ctx, b.pool, store.NewAPIToken{UserID: u.ID, Name: "test", Hash: hash, Prefix: auth.DisplayPrefix(token)})
	require.NoError(t, err)
	return token
}

// leads tells whether setup's watch leads cluster c.
func (b *bundle) leads(c string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leading[c]
}

// startWatch runs a watch of both clusters until the test ends.
func (b *bundle) startWatch(t *testing.T, onLeader func(string, bool)) func() {
	t.Helper()
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Run(wctx, watch.Deps{Store: b.st, LockConn: b.pool.Config().ConnConfig.Copy(),
			Clusters: b.reg.Managed(), Logger: zerolog.New(zerolog.NewTestWriter(t)), OnLeader: onLeader})
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func envOf(cluster string) *kubetest.Env {
	if cluster == "west" {
		return west
	}
	return east
}

// do sends a JSON request to the API and decodes a JSON answer into out (if not nil).
func (b *bundle) do(t *testing.T, method, path string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.srv.URL+"/api/v1"+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		if s, ok := out.(*string); ok {
			*s = string(raw)
		} else {
			require.NoError(t, json.Unmarshal(raw, out), string(raw))
		}
	}
	return resp.StatusCode
}

type apiError struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

type created struct {
	Items []store.Resource `json:"items"`
}

// create posts a resource and returns the one it made (the first, for apply-to-many).
func (b *bundle) create(t *testing.T, path string, body map[string]any) store.Resource {
	t.Helper()
	var out created
	var e apiError
	code := b.do(t, http.MethodPost, path, body, &out)
	if code != http.StatusCreated {
		b.do(t, http.MethodPost, path, body, &e)
	}
	require.Equal(t, http.StatusCreated, code, "%+v", e)
	require.NotEmpty(t, out.Items)
	return out.Items[0]
}

func (b *bundle) resource(t *testing.T, id int64) store.Resource {
	t.Helper()
	var r store.Resource
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d", id), nil, &r))
	return r
}

// waitApplied waits until the resource's current spec version is in its cluster.
func (b *bundle) waitApplied(t *testing.T, id int64) store.Resource {
	t.Helper()
	var r store.Resource
	require.Eventually(t, func() bool {
		r = b.resource(t, id)
		return r.ApplyStatus == store.ApplyApplied && r.AppliedSpecVersion == r.SpecVersion
	}, waitFor, poll, "resource %d never applied: %+v", id, r)
	return r
}

// waitDeleted waits until the resource's row is gone.
func (b *bundle) waitDeleted(t *testing.T, id int64) {
	t.Helper()
	ok := assert.Eventually(t, func() bool {
		return b.do(t, http.MethodGet, fmt.Sprintf("/projects/shop/resources/%d", id), nil, nil) == http.StatusNotFound
	}, waitFor, poll)
	if !ok {
		rows, _ := b.pool.Query(context.Background(), `SELECT kind, state, attempt, errors::text FROM river_job WHERE kind = 'delete_resource'`)
		for rows.Next() {
			var k, st, e string
			var a int
			_ = rows.Scan(&k, &st, &a, &e)
			t.Logf("job %s %s attempt %d: %s", k, st, a, e)
		}
		t.FailNow()
	}
}

// live reads the object of a resource from its cluster.
func live(t *testing.T, r store.Resource) *unstructured.Unstructured {
	t.Helper()
	u, err := flux.Get(context.Background(), envOf(r.Cluster).Client, flux.Ref{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name})
	require.NoError(t, err)
	return u
}

// writeStatus writes the status a Flux controller would: observedGeneration current, the
// Ready condition, lastHandledReconcileAt, plus extra status fields.
func writeStatus(t *testing.T, r store.Resource, ready metav1.ConditionStatus, reason, msg, handled string, extra map[string]any) {
	t.Helper()
	c := envOf(r.Cluster).Client
	ctx := context.Background()
	require.NoError(t, retryConflict(func() error {
		u, err := flux.Get(ctx, c, flux.Ref{Kind: r.Kind, Namespace: r.Namespace, Name: r.Name})
		if err != nil {
			return err
		}
		status := map[string]any{
			"observedGeneration": u.GetGeneration(),
			"conditions": []any{map[string]any{
				"type": "Ready", "status": string(ready), "reason": reason, "message": msg,
				"observedGeneration": u.GetGeneration(), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
			}},
		}
		if handled != "" {
			status["lastHandledReconcileAt"] = handled
		}
		for k, v := range extra {
			status[k] = v
		}
		u.Object["status"] = status
		return c.Status().Update(ctx, u)
	}))
}

func retryConflict(fn func() error) error {
	var err error
	for range 10 {
		if err = fn(); err == nil || !strings.Contains(err.Error(), "modified") {
			return err
		}
	}
	return err
}

// count runs a count query on the test's database.
func (b *bundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), q, args...).Scan(&n))
	return n
}
