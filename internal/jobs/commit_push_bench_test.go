package jobs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// BenchmarkDeployVsGitCLI measures, in one run and against one Git server, the same change made
// two ways: a UI deploy through fluxbridge (a deployment row and its commit_push job inserted in
// one transaction, as the API does, then a running worker renders, commits and pushes it on its
// warm cache), and a person with the git CLI on a warm clone (pull --ff-only, write the same
// rendered file, commit, push). It reports the mean and p50 of each and their ratio.
func BenchmarkDeployVsGitCLI(b *testing.B) {
	srv := newGitServer(b, false)
	f := newPushFixtureTB(b, srv)
	ctx := context.Background()

	workers := river.NewWorkers()
	require.NoError(b, jobs.Register(workers, jobs.Deps{Store: f.st, Git: f.push.Git, Secrets: f.secrets, PushLocks: f.locks, Committer: bot}))
	rc, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{
		Queues: map[string]river.QueueConfig{jobs.QueueGit: {MaxWorkers: 1}}, Workers: workers,
		FetchCooldown: time.Millisecond, FetchPollInterval: 20 * time.Millisecond,
	})
	require.NoError(b, err)
	done, cancel := rc.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled)
	defer cancel()
	require.NoError(b, rc.Start(ctx))
	b.Cleanup(func() { _ = rc.Stop(context.Background()) })

	work := b.TempDir()
	gitCLI(b, work, "clone", "-q", srv.bare(), "clone")
	clone := filepath.Join(work, "clone")

	ui := func(i int) time.Duration {
		d := f.deploy(b, manifest.KindMicroservice, apiForm(fmt.Sprintf("1.0.%d", i), 2))
		headFile := filepath.Join(srv.bare(), "refs", "heads", "main")
		before, err := os.ReadFile(headFile)
		require.NoError(b, err)
		start := time.Now()
		res, err := rc.Insert(ctx, jobs.CommitPushArgs{DeploymentID: d.ID}, nil)
		require.NoError(b, err)
		// Pushed is when the server's branch moves; River's completion bookkeeping (batched)
		// comes after and is not part of what a user waits for.
		var elapsed time.Duration
		for deadline := start.Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Microsecond) {
			if now, err := os.ReadFile(headFile); err == nil && !bytes.Equal(now, before) {
				elapsed = time.Since(start)
				break
			}
		}
		require.NotZero(b, elapsed, "the branch never moved")
		for ev := range done {
			if ev.Job.ID == res.Job.ID {
				require.Equal(b, river.EventKindJobCompleted, ev.Kind)
				break
			}
		}
		require.Equal(b, store.DeployPushed, f.deployment(b, d.ID).Status)
		return elapsed
	}
	cli := func(i int) time.Duration {
		files, err := manifest.Render(manifest.KindMicroservice, apiForm(fmt.Sprintf("1.0.%d", i), 2), manifest.Options{Namespace: "webapp"})
		require.NoError(b, err)
		start := time.Now()
		gitCLI(b, clone, "pull", "-q", "--ff-only", "origin", "main")
		dir := filepath.Join(clone, "apps/production/api-cli")
		require.NoError(b, os.MkdirAll(dir, 0o755))
		for _, file := range files {
			require.NoError(b, os.WriteFile(filepath.Join(dir, file.Name), gitops.Mark(file.Content), 0o644))
		}
		gitCLI(b, clone, "add", "-A")
		gitCLI(b, clone, "commit", "-q", "-m", fmt.Sprintf("deploy api-cli to production: image 1.0.%d", i))
		gitCLI(b, clone, "push", "-q", "origin", "main")
		return time.Since(start)
	}
	ui(-1) // fill both caches
	cli(-1)

	var uis, clis []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		uis = append(uis, ui(i))
		clis = append(clis, cli(i))
	}
	b.StopTimer()
	mu, mc := mean(uis), mean(clis)
	b.ReportMetric(ms(mu), "fluxbridge-ms/deploy")
	b.ReportMetric(ms(mc), "gitcli-ms/deploy")
	b.ReportMetric(float64(mu)/float64(mc), "fluxbridge/gitcli")
	b.ReportMetric(0, "ns/op")
	b.Logf("deploy → commit pushed, %d deploys each: fluxbridge (commit_push job inserted → branch moved) mean %.1fms p50 %.1fms | git CLI (pull, write, commit, push) mean %.1fms p50 %.1fms | ratio %.2f",
		len(uis), ms(mu), ms(p50(uis)), ms(mc), ms(p50(clis)), float64(mu)/float64(mc))
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(max(len(ds), 1))
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
