package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// concurrentDeploys is how many UI deploys of different apps BenchmarkConcurrentDeploys makes
// at once, and deploysTarget the time they must all be pushed in (issue 20, on 2 cores).
const (
	concurrentDeploys = 100
	deploysTarget     = 15 * time.Second
)

// BenchmarkConcurrentDeploys: 100 people deploy 100 different apps to one repository at the
// same moment. Each deploy is what the API stores (a deployment, its spec and its commit_push
// job in one transaction, the 100 transactions concurrent); one worker process (a River client
// with the production queues, jobs.GitWorkers git workers and the push lock) renders, commits
// and pushes them over HTTPS with basic auth to a loopback Git server. It reports the wall
// time until the last is pushed, the commits the branch gained (one per deploy, each with its
// own Deployment-Id trailer), pushes per second, and p50/p99 of each deploy's insert → pushed.
func BenchmarkConcurrentDeploys(b *testing.B) {
	srv := newGitServer(b, true)
	f := newPushFixtureTB(b, srv)
	ctx := context.Background()

	// The worker process's pool, sized as cmd/worker sizes it.
	cfg := f.pool.Config().Copy()
	cfg.MaxConns = int32(jobs.PoolSize())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	st := store.New(pool)
	locks, err := store.NewPushLocks(ctx, pool, jobs.GitWorkers)
	require.NoError(b, err)
	b.Cleanup(locks.Close)
	workers := river.NewWorkers()
	require.NoError(b, jobs.Register(workers, jobs.Deps{
		Store: st, Git: gitops.NewWriter(b.TempDir()), Secrets: f.secrets, PushLocks: locks, Committer: bot,
	}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: jobs.Queues(), Workers: workers, RescueStuckJobsAfter: jobs.RescueStuckJobsAfter,
	})
	require.NoError(b, err)
	require.NoError(b, rc.Start(ctx))
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = rc.Stop(sctx)
	})

	var walls []time.Duration
	var lat []time.Duration
	var commits int
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		before := revCount(b, srv)
		wall, l := deployRound(b, f, st, rc, round)
		walls, lat = append(walls, wall), append(lat, l...)
		commits = revCount(b, srv) - before
		require.Equal(b, concurrentDeploys, commits, "one new commit per deploy")
	}
	b.StopTimer()
	require.Empty(b, srv.git(b, "rev-list", "--merges", "main"), "history is linear")

	wall := slices.Max(walls)
	slices.Sort(lat)
	b.ReportMetric(wall.Seconds(), "s/100-deploys")
	b.ReportMetric(float64(concurrentDeploys)/wall.Seconds(), "pushes/s")
	b.ReportMetric(ms(pct(lat, 50)), "p50-ms")
	b.ReportMetric(ms(pct(lat, 99)), "p99-ms")
	b.ReportMetric(0, "ns/op")
	verdict := "within"
	if wall >= deploysTarget {
		verdict = "MISSES"
	}
	b.Logf("%d concurrent UI deploys of different apps to one repository (HTTPS, %d git workers, %d rounds): all pushed in %.2fs (%s the %s target), %d new commits on main, %.1f pushes/s, insert → pushed p50 %.0fms p99 %.0fms",
		concurrentDeploys, jobs.GitWorkers, len(walls), wall.Seconds(), verdict, deploysTarget, commits,
		float64(concurrentDeploys)/wall.Seconds(), ms(pct(lat, 50)), ms(pct(lat, 99)))
}

// deployRound inserts concurrentDeploys deploys at once and waits until every one is pushed;
// it returns the wall time from the first insert and each deploy's insert → pushed.
func deployRound(b *testing.B, f *pushFixture, st *store.Store, rc *river.Client[pgx.Tx], round int) (time.Duration, []time.Duration) {
	ctx := context.Background()
	ids := make([]int64, concurrentDeploys)
	inserted := make([]time.Time, concurrentDeploys)
	var wg sync.WaitGroup
	errs := make(chan error, concurrentDeploys)
	start := time.Now()
	for i := range concurrentDeploys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := apiForm(fmt.Sprintf("1.%d.0", round), 2)
			form.App = fmt.Sprintf("svc-%03d", i)
			raw, _ := json.Marshal(form)
			errs <- st.WithTx(ctx, func(tx pgx.Tx) error {
				d, err := st.CreateDeployment(ctx, tx, store.NewDeployment{
					ProjectID: f.seed.Project.ID, EnvironmentID: f.seed.Env.ID, GitopsResourceID: &f.seed.Kustomization.ID,
					Method: store.MethodGitopsUI, App: form.App, RequestedBy: &f.seed.User.ID,
				})
				if err != nil {
					return err
				}
				if _, err := st.CreateDeploymentSpec(ctx, tx, store.DeploymentSpec{
					DeploymentID: d.ID, RepositoryID: f.seed.Repo.ID, Branch: "main", Path: "apps/production/" + form.App,
					Namespace: "webapp", Kind: manifest.KindMicroservice, Form: raw,
				}); err != nil {
					return err
				}
				ids[i] = d.ID
				_, err = rc.InsertTx(ctx, tx, jobs.CommitPushArgs{DeploymentID: d.ID}, nil)
				return err
			})
			inserted[i] = time.Now()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}

	// Pushed is when the deployment is recorded pushed, which is what the UI shows.
	pushed := map[int64]time.Time{}
	deadline := start.Add(5 * time.Minute)
	for len(pushed) < concurrentDeploys {
		require.True(b, time.Now().Before(deadline), "only %d of %d deploys pushed", len(pushed), concurrentDeploys)
		rows, err := st.Pool().Query(ctx, `SELECT id, status, message FROM deployments WHERE id = ANY($1) AND status <> 'pending'`, ids)
		require.NoError(b, err)
		now := time.Now()
		for rows.Next() {
			var id int64
			var status, msg string
			require.NoError(b, rows.Scan(&id, &status, &msg))
			require.Equal(b, store.DeployPushed, status, "deployment %d: %s", id, msg)
			if _, ok := pushed[id]; !ok {
				pushed[id] = now
			}
		}
		require.NoError(b, rows.Err())
		time.Sleep(5 * time.Millisecond)
	}
	var wall time.Duration
	lat := make([]time.Duration, concurrentDeploys)
	for i, id := range ids {
		lat[i] = pushed[id].Sub(inserted[i])
		wall = max(wall, pushed[id].Sub(start))
	}

	// Every deploy has its own commit on main, carrying its Deployment-Id, and its record
	// names that commit.
	log := f.srv.git(b, "log", fmt.Sprintf("-%d", concurrentDeploys), "--format=%H %(trailers:key=Deployment-Id,valueonly,separator=)", "main")
	byID := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		sha, id, _ := strings.Cut(line, " ")
		byID[strings.TrimSpace(id)] = sha
	}
	for _, id := range ids {
		d, err := st.DeploymentByID(ctx, st.Pool(), id)
		require.NoError(b, err)
		require.Equal(b, byID[strconv.FormatInt(id, 10)], d.CommitSHA, "deployment %d records its own commit", id)
		require.True(b, strings.HasPrefix(d.CommitMessage, "deploy "+d.App+" to production"), "deployment %d: %q", id, d.CommitMessage)
	}
	return wall, lat
}

// revCount counts the commits on the server's main.
func revCount(tb testing.TB, srv *gitServer) int {
	tb.Helper()
	n, err := strconv.Atoi(srv.git(tb, "rev-list", "--count", "main"))
	require.NoError(tb, err)
	return n
}

// pct returns the p-th percentile of sorted ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}
