package jobs_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/faultnet"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// chaosOutage is how long an outage test keeps a server away (faultnet.Outage).
func chaosOutage(t *testing.T) time.Duration {
	t.Helper()
	d, err := faultnet.Outage()
	require.NoError(t, err)
	return d
}

// everySecond retries a failed job a second later: the outage tests measure recovery, not
// River's backoff.
type everySecond struct{}

func (everySecond) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Second) }

// TestGitServerDownThenBack: deploys made while the Git server is away (connections refused,
// open ones cut) fail their attempts and are retried; once it is back every one is pushed,
// with one commit each, nothing pushed twice.
func TestGitServerDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out an outage")
	}
	outage := chaosOutage(t)
	srv := newGitServer(t, true)
	u, err := url.Parse(srv.url)
	require.NoError(t, err)
	proxy, err := faultnet.New(u.Host)
	require.NoError(t, err)
	t.Cleanup(proxy.Close)
	srv.url = strings.Replace(srv.url, u.Host, proxy.Addr(), 1)
	f := newPushFixture(t, srv)
	ctx := context.Background()

	workers := river.NewWorkers()
	river.AddWorker(workers, f.push)
	rc, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{
		Queues: map[string]river.QueueConfig{jobs.QueueGit: {MaxWorkers: jobs.GitWorkers}}, Workers: workers,
		RetryPolicy: everySecond{}, FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(ctx))
	t.Cleanup(func() { _ = rc.Stop(context.WithoutCancel(ctx)) })

	before := f.commits(t)
	proxy.Down()
	var ids []int64
	for _, app := range []string{"api", "web", "worker"} {
		form := apiForm("1.0.0", 1)
		form.App = app
		d := f.deploy(t, manifest.KindMicroservice, form)
		_, err := rc.Insert(ctx, jobs.CommitPushArgs{DeploymentID: d.ID}, nil)
		require.NoError(t, err)
		ids = append(ids, d.ID)
	}
	time.Sleep(outage)
	var attempts int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT COALESCE(sum(attempt), 0) FROM river_job WHERE kind = 'commit_push'`).Scan(&attempts))
	require.Equal(t, before, f.commits(t), "nothing reached the server")
	require.NoError(t, proxy.Up())
	back := time.Now()
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if f.deployment(t, id).Status != store.DeployPushed {
				return false
			}
		}
		return true
	}, time.Minute+outage, 50*time.Millisecond)
	took := time.Since(back)
	require.Equal(t, before+len(ids), f.commits(t), "one commit per deploy")
	t.Logf("Git server away %s: %d attempts failed meanwhile; all %d deploys pushed %s after it returned, one commit each",
		outage, attempts, len(ids), took.Round(time.Millisecond))
}
