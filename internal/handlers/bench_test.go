package handlers_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

const (
	benchEvents      = 2000 // distinct signed events per round and variant
	benchConcurrency = 8    // concurrent senders, like several clusters' notification-controllers
)

type loadResult struct {
	eventsPerSec float64
	p50, p99     time.Duration
}

// fire posts every body once from benchConcurrency goroutines and measures each request.
func fire(b *testing.B, client *http.Client, url string, bodies, sigs [][]byte) loadResult {
	b.Helper()
	lat := make([]time.Duration, len(bodies))
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[i]))
				req.Header.Set("X-Signature", string(sigs[i]))
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	for i := range bodies {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return loadResult{
		eventsPerSec: float64(len(bodies)) / elapsed.Seconds(),
		p50:          lat[len(lat)*50/100],
		p99:          lat[len(lat)*99/100],
	}
}

// BenchmarkWebhook measures, in one run, the durable webhook path (verify, decode, insert the
// event row and its River job in one transaction, commit, 202) against a bare chi handler that
// only reads the body and answers 202, and reports both and their ratio.
func BenchmarkWebhook(b *testing.B) {
	pool := storetest.NewDB(b)
	st := store.New(pool)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: zerolog.Nop(), WebhookTokens: map[string][]byte{storetest.Cluster: prodKey}})
	durable := httptest.NewServer(h.Routes())
	defer durable.Close()

	bare := chi.NewRouter()
	bare.Post("/hooks/flux/{cluster}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}, Timeout: 10 * time.Second}
	base := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var dur, raw []loadResult
	for round := 0; b.Loop(); round++ {
		bodies := make([][]byte, benchEvents)
		sigs := make([][]byte, benchEvents)
		for i := range bodies {
			ts := base.Add(time.Duration(round*benchEvents+i) * time.Millisecond).Format(time.RFC3339Nano)
			bodies[i] = fluxeventtest.Edit(b, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": ts})
			sigs[i] = []byte(fluxeventtest.SignSHA256(bodies[i], prodKey))
		}
		dur = append(dur, fire(b, client, durable.URL+"/hooks/flux/"+storetest.Cluster, bodies, sigs))
		raw = append(raw, fire(b, client, bareSrv.URL+"/hooks/flux/"+storetest.Cluster, bodies, sigs))
	}
	d, r := median(dur), median(raw)
	b.ReportMetric(d.eventsPerSec, "durable_events/s")
	b.ReportMetric(float64(d.p50.Microseconds())/1000, "durable_p50_ms")
	b.ReportMetric(float64(d.p99.Microseconds())/1000, "durable_p99_ms")
	b.ReportMetric(r.eventsPerSec, "bare_events/s")
	b.ReportMetric(float64(r.p50.Microseconds())/1000, "bare_p50_ms")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "bare_p99_ms")
	b.ReportMetric(d.eventsPerSec/r.eventsPerSec, "durable/bare")
	fmt.Printf("webhook (%d events x %d rounds, %d senders): durable %.0f events/s p50 %s p99 %s | bare chi %.0f events/s p50 %s p99 %s | ratio %.3f\n",
		benchEvents, len(dur), benchConcurrency, d.eventsPerSec, d.p50, d.p99, r.eventsPerSec, r.p50, r.p99, d.eventsPerSec/r.eventsPerSec)
}

// median picks the round with the median throughput.
func median(rs []loadResult) loadResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b loadResult) int {
		switch {
		case a.eventsPerSec < b.eventsPerSec:
			return -1
		case a.eventsPerSec > b.eventsPerSec:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}
