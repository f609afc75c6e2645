package handlers_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// FuzzWebhook posts signed bodies to the webhook end to end, on a real database: whatever the
// body, the answer is 202 (stored, or a redelivery) or 400 naming what is wrong, never a 5xx,
// and a 202 always has its row.
func FuzzWebhook(f *testing.F) {
	for _, name := range []string{fluxeventtest.KustomizationSucceeded, fluxeventtest.GitRepositoryAuthFailed,
		fluxeventtest.HelmReleaseUpgradeSucceded, fluxeventtest.KustomizationPrefixed} {
		f.Add(fluxeventtest.Body(f, name))
	}
	f.Add([]byte(`{"involvedObject":{"kind":"K","name":"n","namespace":"ns"},"severity":"info","timestamp":"2026-01-01T00:00:00Z","reason":"r","message":"m\u0000","reportingController":"c"}`))
	f.Add([]byte(`{"involvedObject":{"kind":"K","name":"n","namespace":"ns"},"severity":"info","timestamp":"2099-01-01T00:00:00Z","reason":"r","message":"m","reportingController":"c","metadata":{"a":"\ud800"}}`))
	pool := storetest.NewDB(f)
	st := store.New(pool)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		f.Fatal(err)
	}
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: zerolog.Nop(), WebhookTokens: map[string][]byte{storetest.Cluster: prodKey}})
	srv := httptest.NewServer(h.Routes())
	f.Cleanup(srv.Close)
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/flux/"+storetest.Cluster, bytes.NewReader(body))
		req.Header.Set("X-Signature", fluxeventtest.SignSHA256(body, prodKey))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := decodeBody(t, resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			if id, ok := got["event_id"].(float64); ok {
				var n int
				if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM flux_events WHERE id = $1`, int64(id)).Scan(&n); err != nil || n != 1 {
					t.Fatalf("202 without its row: %v %v", err, got)
				}
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if got["error"] == nil {
				t.Fatalf("%d without an error: %v", resp.StatusCode, got)
			}
		default:
			t.Fatalf("status %d for %q: %v", resp.StatusCode, body, got)
		}
	})
}
