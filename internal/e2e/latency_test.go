package e2e

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Parameters of the latency measurement.
const (
	latencyDeploys = 10 // deploys measured each way
	// slowInterval is the GitRepository interval of the environment without the trigger:
	// short, so the measurement ends, and still what a cautious team would set.
	slowInterval = 30 * time.Second
	// slowSpacing spreads the deploys without the trigger over one interval, so they sample
	// every phase of Flux's polling.
	slowSpacing = slowInterval / latencyDeploys
)

// TestDeployLatency measures UI deploy → Kustomization Ready (the deploy's commit applied, and
// every object healthy: fluxbridge's Kustomizations wait) on the rig, the clock starting just
// before the deploy request and stopping when the apiserver shows the Kustomization Ready at
// that commit or a later one:
//
//   - with fluxbridge's reconcile trigger (the default: a pushed deploy asks Flux to reconcile
//     the Kustomization with its source at once), against a GitRepository whose 10m interval
//     plays no part;
//   - without it (gitops_config.reconcileOnDeploy false), Flux finding the commit on its own
//     at a 30s interval, the deploys spread over one interval.
//
// It prints p50, p90 and mean of each; `make e2e` shows them.
func TestDeployLatency(t *testing.T) {
	fast := newProject(t, "fast", projectOpts{})
	slow := newProject(t, "slow", projectOpts{gitInterval: slowInterval.String(), envConfig: map[string]any{"reconcileOnDeploy": false}})
	// A first deploy of each, so the measured ones are updates of a running app.
	for _, p := range []*project{fast, slow} {
		d := p.deploy(t, microservice("api", "0.9.0", 1))
		if p == fast {
			p.waitDeployment(t, d, "succeeded")
		}
	}
	slow.waitResource(t, slow.kustID, "ready", "")

	var with, pushed, fetched []time.Duration
	runsBefore := kustomizationRuns(t, fast)
	for i := range latencyDeploys {
		start := time.Now()
		depID := fast.deploy(t, microservice("api", fmt.Sprintf("1.0.%d", i), 1))
		sha := fast.pushedCommit(t, depID)
		pushed = append(pushed, time.Since(start))
		require.Eventually(t, func() bool { return sourceAt(fast) == sha }, settleTimeout, 10*time.Millisecond)
		fetched = append(fetched, time.Since(start))
		waitApplied(t, fast, start, []string{sha})
		with = append(with, time.Since(start))
	}
	t.Logf("with the trigger, by stage: commit pushed %s; GitRepository artifact at the commit %s; Kustomization Ready %s",
		summary(pushed), summary(fetched), summary(with))
	// Runs kustomize-controller finished for the deploys: the last one's may still be queued
	// behind it, so wait for the controller to go quiet before counting.
	runs := settledRuns(t, fast) - runsBefore
	// A run fluxbridge asked for by annotation leaves its token in lastHandledReconcileAt; the
	// trigger follows the run Flux starts for the new artifact instead (it annotates only a
	// Kustomization that sat idle past the grace), so it normally stays empty.
	var ks kustomizev1.Kustomization
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: fluxNamespace, Name: fast.slug + "-dev"}, &ks))
	t.Logf("with the trigger, kustomize-controller ran the Kustomization %d times for %d deploys (%.1f per deploy); last run requested by annotation: %q",
		runs, latencyDeploys, float64(runs)/latencyDeploys, ks.Status.LastHandledReconcileAt)

	// Without the trigger: deploy every slowSpacing and time each until Flux applies its
	// commit or a later one (pushes to the branch are linear, so a later commit covers it).
	// A poller notes when each commit was seen applied.
	type seen struct {
		sha string
		at  time.Time
	}
	var (
		mu      sync.Mutex
		applied []seen
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	go func() {
		defer close(stopped)
		last := ""
		for {
			if sha, ok := readyAt(t, slow); ok && sha != last {
				mu.Lock()
				applied, last = append(applied, seen{sha, time.Now()}), sha
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	starts := make([]time.Time, latencyDeploys)
	index := map[string]int{} // commit → deploy
	var slowIDs []int64
	for i := range latencyDeploys {
		starts[i] = time.Now()
		depID := slow.deploy(t, microservice("api", fmt.Sprintf("2.0.%d", i), 1))
		index[slow.pushedCommit(t, depID)] = i
		slowIDs = append(slowIDs, depID)
		time.Sleep(max(0, slowSpacing-time.Since(starts[i])))
	}
	last := latencyDeploys - 1
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(applied) > 0 && index[applied[len(applied)-1].sha] == last && applied[len(applied)-1].sha != ""
	}, 2*slowInterval+settleTimeout, 50*time.Millisecond, "the last deploy without the trigger was never applied")
	close(stop)
	<-stopped
	without := make([]time.Duration, latencyDeploys)
	next := 0
	for _, a := range applied {
		i, ok := index[a.sha]
		for ; ok && next <= i; next++ {
			without[next] = a.at.Sub(starts[next])
		}
	}
	require.Equal(t, latencyDeploys, next, "every deploy without the trigger was measured")
	// Flux applied fewer commits than were deployed: the deploys it skipped succeeded through
	// their descendant.
	for _, depID := range slowIDs {
		slow.waitDeployment(t, depID, "succeeded")
	}
	t.Logf("without the trigger, Flux applied %d distinct commits for %d deploys", len(applied), latencyDeploys)

	line := fmt.Sprintf("UI deploy → Kustomization Ready, %d deploys each: with fluxbridge's reconcile trigger %s (%.1f Kustomization runs per deploy) | without it, Flux's %s interval: %s",
		latencyDeploys, summary(with), float64(runs)/latencyDeploys, slowInterval, summary(without))
	t.Log(line)
	fmt.Fprintln(os.Stderr, "e2e: "+line)
}

// pushedCommit waits until the commit_push job pushed a deployment and returns its commit.
func (p *project) pushedCommit(t testing.TB, depID int64) string {
	t.Helper()
	var sha string
	require.Eventually(t, func() bool {
		_, d := call(t, http.MethodGet, p.path("/deployments/%d", depID), nil)
		sha, _ = d["commit_sha"].(string)
		return sha != ""
	}, settleTimeout, 10*time.Millisecond)
	return sha
}

// waitApplied polls the apiserver until the project's Kustomization is Ready at one of shas.
func waitApplied(t testing.TB, p *project, start time.Time, shas []string) {
	t.Helper()
	require.Eventually(t, func() bool {
		applied, ok := readyAt(t, p)
		return ok && slices.Contains(shas, applied)
	}, settleTimeout, 10*time.Millisecond, "not applied %s after %s", shas, time.Since(start))
}

// readyAt reads the project's Kustomization from the apiserver and returns the commit it is
// Ready at, if it is Ready for its current generation.
func readyAt(t testing.TB, p *project) (string, bool) {
	var k kustomizev1.Kustomization
	if err := rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: fluxNamespace, Name: p.slug + "-dev"}, &k); err != nil {
		return "", false
	}
	c := apimeta.FindStatusCondition(k.Status.Conditions, meta.ReadyCondition)
	if c == nil || c.Status != "True" || c.ObservedGeneration < k.Generation {
		return "", false
	}
	return shaOf(k.Status.LastAppliedRevision), true
}

// sourceAt returns the commit of the project's GitRepository artifact, as the apiserver shows
// it.
func sourceAt(p *project) string {
	var g sourcev1.GitRepository
	if err := rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: fluxNamespace, Name: p.slug}, &g); err != nil || g.Status.Artifact == nil {
		return ""
	}
	return shaOf(g.Status.Artifact.Revision)
}

// summary formats p50, p90, mean, min and max.
func summary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	// Nearest rank: the smallest value with at least p of the samples at or below it.
	pct := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	return strings.Join([]string{
		"p50 " + r(pct(0.5)), "p90 " + r(pct(0.9)), "mean " + r(sum/time.Duration(len(s))),
		"min " + r(s[0]), "max " + r(s[len(s)-1]),
	}, " ")
}

// kustomizationRuns counts the runs of the project's Kustomization kustomize-controller has
// finished, from its log: one "Reconciliation finished" (or "failed") line per run.
func kustomizationRuns(t testing.TB, p *project) int {
	t.Helper()
	for _, c := range rig.Controllers {
		if c.Name() != "kustomize-controller" {
			continue
		}
		b, err := os.ReadFile(c.LogPath())
		require.NoError(t, err)
		n := 0
		name := `"name":"` + p.slug + `-dev"`
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, name) && (strings.Contains(line, `"msg":"Reconciliation finished`) || strings.Contains(line, `"msg":"Reconciliation failed`)) {
				n++
			}
		}
		return n
	}
	t.Fatal("no kustomize-controller in the rig")
	return 0
}

// settledRuns waits until the count of kustomizationRuns has not moved for longer than a run
// queued behind another takes (its health check polls every 5 s) and returns it.
func settledRuns(t testing.TB, p *project) int {
	t.Helper()
	const quiet = 8 * time.Second
	n, since := kustomizationRuns(t, p), time.Now()
	for time.Since(since) < quiet {
		time.Sleep(100 * time.Millisecond)
		if m := kustomizationRuns(t, p); m != n {
			n, since = m, time.Now()
		}
	}
	return n
}
