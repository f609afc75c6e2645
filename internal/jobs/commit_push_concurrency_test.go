package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// startWorkers starts n River clients on the fixture's database, as n worker processes would
// run: each with its own Git cache and push lock pool, and jobs.GitWorkers workers on the git
// queue. Their logs go to log.
func (f *pushFixture) startWorkers(t *testing.T, n int, log zerolog.Logger) {
	t.Helper()
	ctx := context.Background()
	for range n {
		locks, err := store.NewPushLocks(ctx, f.pool, jobs.GitWorkers)
		require.NoError(t, err)
		workers := river.NewWorkers()
		require.NoError(t, jobs.Register(workers, jobs.Deps{
			Store: f.st, Git: gitops.NewWriter(t.TempDir()), Secrets: f.secrets, PushLocks: locks, Committer: bot,
		}))
		rc, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{
			Queues: map[string]river.QueueConfig{jobs.QueueGit: {MaxWorkers: jobs.GitWorkers}}, Workers: workers,
			FetchCooldown: 10 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
			Middleware: jobs.Middleware(log, nil),
		})
		require.NoError(t, err)
		require.NoError(t, rc.Start(ctx))
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = rc.Stop(sctx)
			locks.Close()
		})
	}
}

// waitSettled waits until no deployment of the fixture is pending.
func (f *pushFixture) waitSettled(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return f.countWhere(t, "deployments", "status = 'pending'") == 0 },
		timeout, 100*time.Millisecond, "deployments still pending")
}

// insertJobs enqueues a commit_push job per deployment, as the API does.
func (f *pushFixture) insertJobs(t *testing.T, ds []*store.Deployment) {
	t.Helper()
	rc, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{})
	require.NoError(t, err)
	params := make([]river.InsertManyParams, len(ds))
	for i, d := range ds {
		params[i] = river.InsertManyParams{Args: jobs.CommitPushArgs{DeploymentID: d.ID}}
	}
	_, err = rc.InsertMany(context.Background(), params)
	require.NoError(t, err)
}

// Test50ConcurrentDeploys: 50 deploys to one repository, worked by three worker processes
// with four git workers each, make 50 commits on a linear history and lose none.
func Test50ConcurrentDeploys(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 50 commits")
	}
	var pushes atomic.Int64
	countPushes := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
				pushes.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
	f := newPushFixture(t, newGitServer(t, false, countPushes))
	const n = 50
	ds := make([]*store.Deployment, n)
	for i := range n {
		form := apiForm("1.0.0", 2)
		form.App = fmt.Sprintf("app-%02d", i)
		ds[i] = f.deploy(t, manifest.KindMicroservice, form)
	}
	f.insertJobs(t, ds)
	start := time.Now()
	f.startWorkers(t, 3, zerolog.Nop())
	f.waitSettled(t, 3*time.Minute)
	t.Logf("%d deploys pushed by 3 workers in %s", n, time.Since(start))

	require.Equal(t, n+1, f.commits(t), "the seed commit and one commit per deploy")
	require.Empty(t, f.srv.git(t, "rev-list", "--merges", "main"), "history is linear")
	history := strings.Fields(f.srv.git(t, "rev-list", "main"))
	shas := map[string]bool{}
	for _, d := range ds {
		got := f.deployment(t, d.ID)
		require.Equal(t, store.DeployPushed, got.Status, "deployment %d: %s", d.ID, got.Message)
		require.Contains(t, history, got.CommitSHA)
		shas[got.CommitSHA] = true
	}
	require.Len(t, shas, n, "every deploy has its own commit")
	require.EqualValues(t, n, pushes.Load(), "the push lock serialised the pushes: none lost a race and retried")
	ls := f.srv.git(t, "ls-tree", "-d", "--name-only", "main", "apps/production/")
	require.Len(t, strings.Fields(ls), n+1, "every app's directory is there, and the namespaces' they share")
	require.Equal(t, n, strings.Count(f.srv.git(t, "log", "--format=%s", "main"), ": new microservice"))
}
