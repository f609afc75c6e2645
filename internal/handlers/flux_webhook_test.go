package handlers_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the provider may sign with sha1
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func sign(newHash func() hash.Hash, algo string, body, key []byte) string {
	mac := hmac.New(newHash, key)
	mac.Write(body)
	return algo + "=" + hex.EncodeToString(mac.Sum(nil))
}

func TestWebhookAuthentication(t *testing.T) {
	b := setup(t)
	body := fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded)
	hook := "/hooks/flux/" + storetest.Cluster

	tests := []struct {
		name       string
		path       string
		body       []byte
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{"no auth", hook, body, nil, 401, "missing X-Signature"},
		{"bad sha256 signature", hook, body, map[string]string{"X-Signature": sign(sha256.New, "sha256", body, []byte("wrong-key-wrong-key"))}, 401, "signature does not match"},
		{"signature of another body", hook, body, map[string]string{"X-Signature": sign(sha256.New, "sha256", []byte("{}"), prodKey)}, 401, "signature does not match"},
		{"other cluster's key", hook, body, map[string]string{"X-Signature": sign(sha256.New, "sha256", body, stagingKey)}, 401, "signature does not match"},
		{"unknown algorithm", hook, body, map[string]string{"X-Signature": sign(sha256.New, "md5", body, prodKey)}, 401, "X-Signature must be"},
		{"no algorithm", hook, body, map[string]string{"X-Signature": "deadbeef"}, 401, "X-Signature must be"},
		{"not hex", hook, body, map[string]string{"X-Signature": "sha256=zz"}, 401, "X-Signature must be"},
		{"wrong bearer", hook, body, map[string]string{"Authorization": "Bearer nope"}, 401, "bearer token does not match"},
		{"basic auth", hook, body, map[string]string{"Authorization": "Basic " + string(prodKey)}, 401, "missing X-Signature"},
		{"bad signature is not rescued by a good bearer", hook, body, map[string]string{"X-Signature": "sha256=00", "Authorization": "Bearer " + string(prodKey)}, 401, "signature does not match"},
		{"unknown cluster", "/hooks/flux/nowhere", body, map[string]string{"X-Signature": sign(sha256.New, "sha256", body, prodKey)}, 404, "unknown cluster"},
		{"too large", hook, append(body, make([]byte, 1<<20)...), map[string]string{"X-Signature": "sha256=00"}, 413, "exceeds 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, got := b.post(t, tt.path, tt.body, tt.header)
			require.Equal(t, tt.wantStatus, resp.StatusCode, got)
			require.Contains(t, got["error"], tt.wantError)
			if tt.wantStatus == 401 {
				require.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	require.Zero(t, b.events(t), "no rejected delivery writes a row")
	require.Zero(t, b.jobs(t), "no rejected delivery enqueues a job")

	accepted := []struct {
		name   string
		header map[string]string
	}{
		{"sha1", map[string]string{"X-Signature": sign(sha1.New, "sha1", body, prodKey)}},
		{"sha256", map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)}},
		{"sha384", map[string]string{"X-Signature": sign(sha512.New384, "sha384", body, prodKey)}},
		{"sha512", map[string]string{"X-Signature": sign(sha512.New, "sha512", body, prodKey)}},
		{"bearer", map[string]string{"Authorization": "Bearer " + string(prodKey)}},
	}
	for i, tt := range accepted {
		t.Run(tt.name, func(t *testing.T) {
			// A distinct event per case, signed over its own bytes.
			ev := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": fmt.Sprintf("2026-11-26T10:00:%02dZ", i)})
			h := tt.header
			if sig, ok := h["X-Signature"]; ok {
				algo, _, _ := strings.Cut(sig, "=")
				fn := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha384": sha512.New384, "sha512": sha512.New}[algo]
				h = map[string]string{"X-Signature": sign(fn, algo, ev, prodKey)}
			}
			resp, got := b.post(t, hook, ev, h)
			require.Equal(t, http.StatusAccepted, resp.StatusCode, got)
			require.Equal(t, false, got["duplicate"])
			require.NotZero(t, got["event_id"])
		})
	}
	require.Equal(t, len(accepted), b.events(t))
	require.Equal(t, len(accepted), b.jobs(t))
}

func TestWebhookBadInput(t *testing.T) {
	b := setup(t)
	hook := "/hooks/flux/" + storetest.Cluster
	tests := []struct {
		name      string
		body      []byte
		wantField string
		wantError string
	}{
		{"malformed json", []byte(`{"involvedObject": {`), "", "malformed event JSON"},
		{"empty body", []byte(``), "", "malformed event JSON"},
		{"wrong type", []byte(`{"involvedObject": "x"}`), "", "field involvedObject"},
		{"missing kind", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.kind": nil}), "involvedObject.kind", "required"},
		{"missing name", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.name": nil}), "involvedObject.name", "required"},
		{"missing reason", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"reason": nil}), "reason", "required"},
		{"missing timestamp", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": nil}), "timestamp", "required"},
		{"bad timestamp", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": "yesterday"}), "", "malformed event JSON"},
		{"bad severity", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"severity": "fatal"}), "severity", "not one of"},
		{"NUL in message", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"message": "ok\x00"}), "message", "NUL character"},
		{"NUL in metadata", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata.revision": "\x00"}), "metadata.revision", "NUL character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, got := b.post(t, hook, tt.body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(tt.body, prodKey)})
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
			require.Contains(t, got["error"], tt.wantError)
			if tt.wantField != "" {
				require.Equal(t, tt.wantField, got["field"])
			}
		})
	}
	require.Zero(t, b.events(t))
	require.Zero(t, b.jobs(t))
}

func TestWebhookDuplicateDelivery(t *testing.T) {
	b := setup(t)
	body := fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded)
	hdr := map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)}
	resp, first := b.post(t, "/hooks/flux/"+storetest.Cluster, body, hdr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, false, first["duplicate"])
	for range 3 {
		resp, again := b.post(t, "/hooks/flux/"+storetest.Cluster, body, hdr)
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "a redelivery is acknowledged so Flux stops retrying")
		require.Equal(t, true, again["duplicate"])
	}
	// The same event with the group-prefixed metadata shape is the same event.
	prefixed := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata": map[string]any{
		"kustomize.toolkit.fluxcd.io/revision": "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f",
		"cluster":                              "prod-eu", "environment": "production"}})
	resp, again := b.post(t, "/hooks/flux/"+storetest.Cluster, prefixed, map[string]string{"X-Signature": fluxeventtest.SignSHA256(prefixed, prodKey)})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, true, again["duplicate"])
	// The same body from another cluster is another event.
	resp, other := b.post(t, "/hooks/flux/staging", body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, stagingKey)})
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, false, other["duplicate"])
	require.Equal(t, 2, b.events(t))
	require.Equal(t, 2, b.jobs(t))
}

// TestWebhookConcurrentDeliveriesGroupCommit: 40 distinct events each delivered twice at once
// by 80 concurrent senders (so copies land in one batch or in racing batches): every 202 means
// the row and its job are stored, each event is stored once with one job, and exactly one of
// its two deliveries is answered as new.
func TestWebhookConcurrentDeliveriesGroupCommit(t *testing.T) {
	b := setup(t)
	const events = 40
	bodies := make([][]byte, events)
	for i := range bodies {
		bodies[i] = fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
			"timestamp": fmt.Sprintf("2026-11-26T10:%02d:%02dZ", i/60, i%60)})
	}
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make([]answer, 2*events)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Go(func() {
			body := bodies[i%events]
			<-start
			resp, got := b.post(t, "/hooks/flux/"+storetest.Cluster, body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)})
			answers[i] = answer{resp.StatusCode, got}
		})
	}
	close(start)
	wg.Wait()
	fresh := map[int]int{}
	ids := map[float64]bool{}
	for i, a := range answers {
		require.Equal(t, http.StatusAccepted, a.status, "%v", a.body)
		if a.body["duplicate"] == false {
			fresh[i%events]++
			require.False(t, ids[a.body["event_id"].(float64)], "one ID per event")
			ids[a.body["event_id"].(float64)] = true
		}
	}
	for i := range events {
		require.Equal(t, 1, fresh[i], "event %d: exactly one delivery is new", i)
	}
	require.Equal(t, events, b.events(t))
	require.Equal(t, events, b.jobsOf(t, "flux_event"))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM flux_events e WHERE NOT EXISTS (
		SELECT 1 FROM river_job j WHERE j.kind = 'flux_event' AND (j.args->>'event_id')::bigint = e.id)`), "every row has its job")
}

// TestWebhookToDeployment is the acceptance path: a signed event is processed by a running
// worker within 2 s, and a replay changes nothing.
func TestWebhookToDeployment(t *testing.T) {
	b := setup(t)
	b.startWorker(t)
	body := fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded)
	hdr := map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)}
	resp, _ := b.post(t, "/hooks/flux/"+storetest.Cluster, body, hdr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM deployments WHERE deployment_method = 'gitops-git' AND status = 'succeeded'") == 1 &&
			b.count(t, "SELECT count(*) FROM audit_logs WHERE action = 'flux.ReconciliationSucceeded'") == 1 &&
			b.count(t, "SELECT count(*) FROM gitops_resources WHERE id = $1 AND status = 'ready'", b.seed.Kustomization.ID) == 1
	}, 2*time.Second, 20*time.Millisecond)

	snapshot := func() [4]int {
		return [4]int{b.count(t, "SELECT count(*) FROM deployments"), b.count(t, "SELECT count(*) FROM audit_logs"),
			b.events(t), b.jobs(t)}
	}
	before := snapshot()
	resp, got := b.post(t, "/hooks/flux/"+storetest.Cluster, body, hdr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, true, got["duplicate"])
	time.Sleep(200 * time.Millisecond) // give a wrongly enqueued job the time to show
	require.Equal(t, before, snapshot())

	resp, list := b.get(t, "/api/v1/projects/webapp/deployments?method=gitops-git")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	items := list["items"].([]any)
	require.Len(t, items, 1)
	d := items[0].(map[string]any)
	require.Equal(t, "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", d["commit_sha"])
	require.Equal(t, store.DeploySucceeded, d["status"])
}

// TestEventsAcceptedWhileWorkerDown: the receiver keeps accepting while no worker runs; every
// accepted event is processed exactly once when a worker starts.
func TestEventsAcceptedWhileWorkerDown(t *testing.T) {
	b := setup(t)
	const n = 40
	for i := range n {
		rev := fmt.Sprintf("main@sha1:%040x", i+1)
		body := fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
			"timestamp": time.Date(2026, 11, 26, 9, 0, i, 0, time.UTC).Format(time.RFC3339), "metadata.revision": rev})
		resp, _ := b.post(t, "/hooks/flux/"+storetest.Cluster, body, map[string]string{"X-Signature": fluxeventtest.SignSHA256(body, prodKey)})
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	require.Equal(t, n, b.count(t, "SELECT count(*) FROM river_job WHERE state = 'available'"))
	require.Equal(t, n, b.count(t, "SELECT count(*) FROM flux_events WHERE processed_at IS NULL"))

	b.startWorker(t)
	require.Eventually(t, func() bool {
		return b.count(t, "SELECT count(*) FROM river_job WHERE state = 'completed'") == n
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, b.count(t, "SELECT count(*) FROM flux_events WHERE processed_at IS NULL"))
	require.Equal(t, n, b.count(t, "SELECT count(*) FROM deployments WHERE deployment_method = 'gitops-git'"))
	require.Equal(t, n, b.count(t, "SELECT count(*) FROM audit_logs WHERE actor_type = 'flux' AND target_type = 'Kustomization'"))
	require.Equal(t, fmt.Sprintf("main@sha1:%040x", n),
		func() string {
			r, err := b.st.ResourceByID(t.Context(), b.pool, b.seed.Kustomization.ID)
			require.NoError(t, err)
			return r.LastAppliedRevision
		}(), "the newest event wins, whatever order the jobs ran in")
}

// TestWebhookDatabaseDown: with Postgres unreachable an event is answered 503 with Retry-After
// (notification-controller retries it), never a 202 or an opaque 500.
func TestWebhookDatabaseDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://fluxbridge@"+addr+"/fluxbridge?connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{Store: store.New(pool), River: rc, Logger: zerolog.Nop(), WebhookTokens: map[string][]byte{storetest.Cluster: prodKey}})
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)
	body := fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/flux/"+storetest.Cluster, bytes.NewReader(body))
	req.Header.Set("X-Signature", fluxeventtest.SignSHA256(body, prodKey))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "5", resp.Header.Get("Retry-After"))
	require.Contains(t, decodeBody(t, resp.Body)["error"], "database is unavailable")
}
