package jobs_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// The event load of BenchmarkEventWorker (issue 20: 1,000 events/s for 5 minutes); the
// environment shortens it for a quick look: FLUXBRIDGE_BENCH_EVENTS_DURATION=20s,
// FLUXBRIDGE_BENCH_EVENTS_RATE=500.
const (
	eventsRate     = 1000
	eventsDuration = 5 * time.Minute
	eventsSample   = 5 * time.Second
	// eventsBatch is the receiver's group commit: the events of one tick in one transaction.
	eventsTick = 10 * time.Millisecond
)

// BenchmarkEventWorker: one worker process keeps up with a steady stream of Flux events.
// A load generator stores events and their flux_event jobs at a fixed rate, as the receiver's
// group commit does (the events of each 10 ms in one transaction: a multi-row insert and
// River's InsertManyTx), while a River client with the production queues (jobs.Queues) and
// the real FluxEventWorker works them. Two thirds of the events concern the three seeded
// managed objects (a GitRepository, a Kustomization, a HelmRelease: status, history, sync
// status, gitops-git deployments as revisions move, failures notified), the rest 40 objects
// no project manages (audited, failures notified). Every few seconds it samples the backlog: events not
// yet processed and flux_event jobs still available. It reports the rate offered and the rate
// processed, the backlog's maximum and its value at the end, and each event's received →
// processed p50/p99.
func BenchmarkEventWorker(b *testing.B) {
	rate, dur := eventsRate, eventsDuration
	if v := os.Getenv("FLUXBRIDGE_BENCH_EVENTS_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		rate = n
	}
	if v := os.Getenv("FLUXBRIDGE_BENCH_EVENTS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		dur = d
	}
	ctx := context.Background()
	ingest := storetest.NewDB(b) // the receiver's pool
	st := store.New(ingest)
	seed := storetest.Seed(b, st, ingest)
	mix := eventMix(b, seed)

	// The worker process: its pool sized as cmd/worker sizes it, the production queues.
	cfg := ingest.Config().Copy()
	cfg.MaxConns = int32(jobs.PoolSize())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	workers := river.NewWorkers()
	require.NoError(b, jobs.Register(workers, jobs.Deps{Store: store.New(pool)}))
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues: jobs.Queues(), Workers: workers, RescueStuckJobsAfter: jobs.RescueStuckJobsAfter,
	})
	require.NoError(b, err)
	b.Cleanup(func() { // before the pools close, should the run fail
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = rc.Stop(sctx)
	})
	ins, err := river.NewClient(riverpgxv5.New(ingest), &river.Config{}) // the receiver's, insert-only
	require.NoError(b, err)

	for b.Loop() {
		require.NoError(b, rc.Start(ctx))
		res := runEventLoad(b, ctx, ingest, st, ins, mix, rate, dur)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = rc.Stop(sctx)
		cancel()

		b.ReportMetric(res.offered, "offered-events/s")
		b.ReportMetric(res.processed, "processed-events/s")
		b.ReportMetric(float64(res.maxBacklog), "max-backlog")
		b.ReportMetric(float64(res.endBacklog), "end-backlog")
		b.ReportMetric(ms(res.p50), "p50-ms")
		b.ReportMetric(ms(res.p99), "p99-ms")
		b.ReportMetric(0, "ns/op")
		verdict := "keeps up"
		if !res.keptUp(rate) {
			verdict = "FALLS BEHIND"
		}
		b.Logf("flux events at %d/s for %s (%d stored, %.0f%% of managed objects): %s — offered %.0f/s, processed %.0f/s; backlog (unprocessed events / available jobs) max %d/%d, at the end %d/%d, drained %s after the load; received → processed p50 %.1fms p99 %.1fms",
			rate, dur, res.events, 100*float64(len(mix)-unmanagedOf(mix))/float64(len(mix)), verdict, res.offered, res.processed,
			res.maxBacklog, res.maxJobs, res.endBacklog, res.endJobs, drained(res.drain), ms(res.p50), ms(res.p99))
		b.Logf("backlog samples (unprocessed events every %s): %v", eventsSample, res.samples)
	}
}

func drained(d time.Duration) string {
	if d < 0 {
		return "not (5 minutes)"
	}
	return d.Round(100 * time.Millisecond).String()
}

// eventLoad is what runEventLoad measured.
type eventLoad struct {
	events                 int
	offered, processed     float64 // events/s over the load
	maxBacklog, endBacklog int64
	maxJobs, endJobs       int64
	samples                []int64
	drain                  time.Duration // from the end of the load until the backlog was empty; -1: not within 5 minutes
	p50, p99               time.Duration
}

// keptUp: the worker processed what was offered and the backlog at the end is what a couple
// of seconds of traffic leave in flight, not a queue that grew over the run.
func (r eventLoad) keptUp(rate int) bool {
	return r.processed >= 0.98*r.offered && r.endBacklog <= int64(2*rate)
}

// runEventLoad stores rate events a second for dur, sampling the backlog, then waits for the
// worker to drain it and reads the latencies.
func runEventLoad(b *testing.B, ctx context.Context, db *pgxpool.Pool, st *store.Store, ins *river.Client[pgx.Tx], mix []fluxevent.Event, rate int, dur time.Duration) eventLoad {
	var res eventLoad
	backlog := func() (events, available int64) {
		require.NoError(b, db.QueryRow(ctx, `SELECT (SELECT count(*) FROM flux_events WHERE processed_at IS NULL),
			(SELECT count(*) FROM river_job WHERE queue = $1 AND state = 'available')`, jobs.QueueEvents).Scan(&events, &available))
		return events, available
	}
	firstID := int64(0)
	require.NoError(b, db.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM flux_events`).Scan(&firstID))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the sampler
		defer wg.Done()
		t := time.NewTicker(eventsSample)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ev, jb := backlog()
				res.samples = append(res.samples, ev)
				res.maxBacklog, res.maxJobs = max(res.maxBacklog, ev), max(res.maxJobs, jb)
			}
		}
	}()

	start := time.Now()
	end := start.Add(dur)
	tick := time.NewTicker(eventsTick)
	sent := 0
	for now := start; now.Before(end); now = <-tick.C {
		due := int(float64(rate)*now.Sub(start).Seconds()) - sent
		if due <= 0 {
			continue
		}
		rows := make([]*store.FluxEvent, due)
		for i := range rows {
			rows[i] = eventRow(&mix[(sent+i)%len(mix)], sent+i)
		}
		require.NoError(b, st.WithTx(ctx, func(tx pgx.Tx) error {
			ids, err := st.InsertFluxEvents(ctx, tx, rows)
			if err != nil {
				return err
			}
			params := make([]river.InsertManyParams, 0, len(ids))
			for _, id := range ids {
				if id != 0 {
					params = append(params, river.InsertManyParams{Args: jobs.FluxEventArgs{EventID: id}})
				}
			}
			_, err = ins.InsertManyTx(ctx, tx, params)
			return err
		}))
		sent += due
	}
	tick.Stop()
	loadEnd := time.Now()
	var processedByEnd int64
	require.NoError(b, db.QueryRow(ctx, `SELECT count(*) FROM flux_events WHERE id > $1 AND processed_at IS NOT NULL`, firstID).Scan(&processedByEnd))
	close(stop)
	wg.Wait()
	res.events = sent
	res.endBacklog, res.endJobs = backlog()
	elapsed := loadEnd.Sub(start).Seconds()
	res.offered, res.processed = float64(sent)/elapsed, float64(processedByEnd)/elapsed

	res.drain = -1 // not drained within the bound
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if ev, _ := backlog(); ev == 0 {
			res.drain = time.Since(loadEnd)
			break
		}
	}

	// received_at is when the receiver's transaction began, processed_at when the worker's did;
	// events still unprocessed (not drained) are left out.
	var p50, p99 float64
	require.NoError(b, db.QueryRow(ctx, `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d)
		FROM (SELECT extract(epoch FROM processed_at - received_at) AS d FROM flux_events WHERE id > $1) x`, firstID).Scan(&p50, &p99))
	res.p50, res.p99 = time.Duration(p50*float64(time.Second)), time.Duration(p99*float64(time.Second))
	var n int
	require.NoError(b, db.QueryRow(ctx, `SELECT count(*) FROM flux_events WHERE id > $1`, firstID).Scan(&n))
	require.Equal(b, sent, n, "every event sent is stored once")
	return res
}

// eventMix is the traffic's cycle of events: the fixtures of real controllers about the seeded
// managed objects, and the same about objects no project manages.
func eventMix(b *testing.B, seed *storetest.Seeded) []fluxevent.Event {
	decode := func(name string, set map[string]any) fluxevent.Event {
		body := fluxeventtest.Body(b, name)
		if set != nil {
			body = fluxeventtest.Edit(b, name, set)
		}
		ev, err := fluxevent.Decode(body)
		require.NoError(b, err)
		return *ev
	}
	_ = seed // the fixtures name the seeded objects
	managed := []fluxevent.Event{
		decode(fluxeventtest.KustomizationSucceeded, nil),
		decode(fluxeventtest.GitRepositoryNewArtifact, nil),
		decode(fluxeventtest.HelmReleaseUpgradeSucceded, nil),
		decode(fluxeventtest.ControllerKustomizationProgress, map[string]any{"involvedObject.name": "webapp-production"}),
		decode(fluxeventtest.KustomizationSucceeded, nil),
		decode(fluxeventtest.KustomizationBuildFailed, nil),
		decode(fluxeventtest.HelmReleaseUpgradeSucceded, nil),
		decode(fluxeventtest.GitRepositoryNewArtifact, nil),
	}
	// Objects of other teams, many of them: 4 events for every 8 of the managed ones.
	var mix []fluxevent.Event
	kinds := []string{fluxeventtest.KustomizationSucceeded, fluxeventtest.HelmReleaseUpgradeSucceded, fluxeventtest.GitRepositoryAuthFailed, fluxeventtest.KustomizationSucceeded}
	for team := range 10 {
		mix = append(mix, managed...)
		for _, name := range kinds {
			mix = append(mix, decode(name, map[string]any{"involvedObject.name": fmt.Sprintf("team-%d", team), "involvedObject.namespace": "other"}))
		}
	}
	return mix
}

func unmanagedOf(mix []fluxevent.Event) int {
	n := 0
	for _, ev := range mix {
		if ev.InvolvedObject.Namespace == "other" {
			n++
		}
	}
	return n
}

// eventRow is the i-th event of the stream as the receiver stores it: dated now (a new
// fingerprint), and every 500th of its cycle at a new revision, as commits land.
func eventRow(tmpl *fluxevent.Event, i int) *store.FluxEvent {
	ev := *tmpl
	ev.Timestamp = metav1.NewTime(time.Now())
	if rev := ev.Revision(); rev != "" {
		md := make(map[string]string, len(ev.Metadata))
		for k, v := range ev.Metadata {
			md[k] = v
		}
		if fluxevent.CommitSHA(rev) != "" {
			md["revision"] = fmt.Sprintf("main@sha1:%040x", i/500)
		}
		ev.Metadata = md
	}
	fp := ev.Fingerprint(storetest.Cluster)
	o := ev.InvolvedObject
	return &store.FluxEvent{
		Cluster: storetest.Cluster, Fingerprint: fp[:], EventTime: ev.Timestamp.UTC(), APIVersion: o.APIVersion,
		Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: string(o.UID), Severity: ev.Severity,
		Reason: ev.Reason, Message: ev.Message, Revision: ev.Revision(), ReportingController: ev.ReportingController,
		Metadata: ev.Metadata,
	}
}
