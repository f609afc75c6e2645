package handlers_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

const benchAPIRequests = 2000 // per round and variant

// load sends n requests made by mk from benchConcurrency goroutines and measures each.
func load(b *testing.B, client *http.Client, n, want int, mk func(i int) *http.Request) loadResult {
	b.Helper()
	lat := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range benchConcurrency {
		wg.Go(func() {
			for i := range next {
				req := mk(i)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != want {
					b.Errorf("status %d, want %d", resp.StatusCode, want)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	slices.Sort(lat)
	return loadResult{eventsPerSec: float64(n) / time.Since(start).Seconds(), p50: lat[n*50/100], p99: lat[n*99/100]}
}

// BenchmarkAPI measures what authentication, authorization and the audit row cost: an
// authenticated, authorized read of a deployments page as a viewer, and a deploy to staging as
// a developer (authorize against the environment, insert the deployment, its job and its audit
// row in one transaction).
func BenchmarkAPI(b *testing.B) {
	ctx := context.Background()
	pool := storetest.NewDB(b)
	st := store.New(pool)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: zerolog.Nop(), WebhookTokens: map[string][]byte{storetest.Cluster: prodKey, "staging": stagingKey}})
	srv := httptest.NewServer(h.Routes())
	defer srv.Close()
	seed := storetest.Seed(b, st, pool)
	if _, err := st.CreateEnvironment(ctx, pool, store.Environment{ProjectID: seed.Project.ID, Name: "staging", Kind: "staging", Cluster: "staging"}); err != nil {
		b.Fatal(err)
	}
	token := func(name, role string) string {
		u, err := st.CreateUser(ctx, pool, store.User{Username: name})
		if err == nil {
			err = st.AddMember(ctx, pool, seed.Project.ID, u.ID, role)
		}
		tok, hash, _ := auth.NewToken()
		if err == nil {
			_, err = st.CreateToken(ctx, pool, store.NewAPIToken{UserID: u.ID, Name: "bench", Hash: hash, Prefix: auth.DisplayPrefix(tok)})
		}
		if err != nil {
			b.Fatal(err)
		}
		return "Bearer " + tok
	}
	viewer, developer := token("vera", "viewer"), token("dev", "developer")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency}, Timeout: 10 * time.Second}

	var reads, deploys []loadResult
	for round := 0; b.Loop(); round++ {
		deploys = append(deploys, load(b, client, benchAPIRequests, http.StatusCreated, func(i int) *http.Request {
			body := fmt.Sprintf(`{"method": "manual", "app": "web", "revision": "r%d.%d"}`, round, i)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/projects/webapp/environments/staging/deployments", bytes.NewBufferString(body))
			req.Header.Set("Authorization", developer)
			req.Header.Set("Content-Type", "application/json")
			return req
		}))
		reads = append(reads, load(b, client, benchAPIRequests, http.StatusOK, func(int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/projects/webapp/deployments?limit=20", nil)
			req.Header.Set("Authorization", viewer)
			return req
		}))
	}
	r, d := median(reads), median(deploys)
	b.ReportMetric(r.eventsPerSec, "read_req/s")
	b.ReportMetric(float64(r.p99.Microseconds())/1000, "read_p99_ms")
	b.ReportMetric(d.eventsPerSec, "deploy_req/s")
	b.ReportMetric(float64(d.p99.Microseconds())/1000, "deploy_p99_ms")
	fmt.Printf("api (%d requests x %d rounds, %d clients): authorized read %.0f req/s p50 %s p99 %s | audited deploy %.0f req/s p50 %s p99 %s\n",
		benchAPIRequests, len(reads), benchConcurrency, r.eventsPerSec, r.p50, r.p99, d.eventsPerSec, d.p50, d.p99)
}
