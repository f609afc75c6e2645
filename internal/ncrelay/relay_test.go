package ncrelay

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
)

const token = "0123456789abcdef-webhook-token"

// sink is the webhook the relay delivers to; it answers with the queued statuses, then 202.
type sink struct {
	srv      *httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
}

func newSink(t *testing.T, statuses ...int) *sink {
	s := &sink{statuses: statuses}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, b)
		s.headers = append(s.headers, r.Header.Clone())
		status := http.StatusAccepted
		if len(s.statuses) > 0 {
			status, s.statuses = s.statuses[0], s.statuses[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// objects are a generic-hmac Provider "fluxbridge" addressed at url, its Secret, and an Alert
// for the Kustomization of kustomizationEvent.
func objects(url, providerType string) []client.Object {
	return []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fluxbridge-webhook"},
			Data:       map[string][]byte{"token": []byte(token), "headers": []byte("X-Cluster: dev-eu\n")},
		},
		&notificationv1beta3.Provider{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fluxbridge"},
			Spec: notificationv1beta3.ProviderSpec{
				Type: providerType, Address: url, SecretRef: &meta.LocalObjectReference{Name: "fluxbridge-webhook"},
			},
		},
		&notificationv1beta3.Alert{
			ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "fluxbridge-webapp-dev"},
			Spec: notificationv1beta3.AlertSpec{
				ProviderRef:   meta.LocalObjectReference{Name: "fluxbridge"},
				EventSeverity: eventv1.EventSeverityInfo,
				EventSources: []notificationv1.CrossNamespaceObjectReference{
					{Kind: "Kustomization", Name: "webapp-dev"},
					{Kind: "Kustomization", Name: "*"}, // a second match delivers once
				},
				EventMetadata: map[string]string{"cluster": "dev-eu", "environment": "dev"},
			},
		},
	}
}

func newRelay(t *testing.T, objs ...client.Object) *Relay {
	scheme, err := fluxscheme.New()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	r := New(Options{Client: c, RetryWait: 10 * time.Millisecond, Logf: t.Logf})
	t.Cleanup(r.Wait)
	return r
}

// post sends ev to the relay as a Flux controller does and returns the status.
func post(t *testing.T, r *Relay, ev *eventv1.Event) int {
	t.Helper()
	body, err := json.Marshal(ev)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return rec.Code
}

func TestRelayDeliversSigned(t *testing.T) {
	s := newSink(t)
	r := newRelay(t, objects(s.srv.URL+"/hooks/flux/dev-eu", notificationv1beta3.GenericHMACProvider)...)
	require.Equal(t, http.StatusAccepted, post(t, r, kustomizationEvent()))
	r.Wait()

	ds := r.Deliveries()
	require.Len(t, ds, 1, "one delivery per alert")
	require.NoError(t, ds[0].Err)
	require.Equal(t, 1, ds[0].Attempts)
	require.Equal(t, "flux-system/fluxbridge-webapp-dev", ds[0].Alert)
	require.Equal(t, "flux-system/fluxbridge", ds[0].Provider)

	require.Len(t, s.bodies, 1)
	h := s.headers[0]
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "kustomize-controller", h.Get("Gotk-Component"))
	require.Equal(t, "dev-eu", h.Get("X-Cluster"), "headers from the secret")
	require.Equal(t, signature(s.bodies[0], token), h.Get("X-Signature"))

	var got eventv1.Event
	require.NoError(t, json.Unmarshal(s.bodies[0], &got))
	require.Equal(t, "dev", got.Metadata["environment"])
	require.Equal(t, "dev-eu", got.Metadata["cluster"])
	require.Equal(t, "42", got.Metadata["deployment"])
	require.Equal(t, "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac", got.Metadata["revision"])
	require.NotContains(t, got.Metadata, "token")
	require.NotContains(t, got.Metadata, "kustomize.toolkit.fluxcd.io/revision")
}

func TestRelayRefusesDuplicates(t *testing.T) {
	s := newSink(t)
	r := newRelay(t, objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)...)
	now := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	r.opts.Now = func() time.Time { return now }

	require.Equal(t, http.StatusAccepted, post(t, r, kustomizationEvent()))
	require.Equal(t, http.StatusTooManyRequests, post(t, r, kustomizationEvent()), "same event again")
	other := kustomizationEvent()
	other.Message = "Reconciliation finished in 1s, next run in 10m0s"
	require.Equal(t, http.StatusAccepted, post(t, r, other), "another message")
	now = now.Add(DuplicateWindow)
	require.Equal(t, http.StatusAccepted, post(t, r, kustomizationEvent()), "after the window")
	r.Wait()
	require.Len(t, r.Deliveries(), 3)
	require.Equal(t, 4, r.Received())
}

func TestRelayRetries(t *testing.T) {
	// 503, 429 and a 500 are retried; the fourth attempt is accepted.
	s := newSink(t, http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError)
	r := newRelay(t, objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)...)
	post(t, r, kustomizationEvent())
	r.Wait()
	d := r.Deliveries()[0]
	require.NoError(t, d.Err)
	require.Equal(t, 4, d.Attempts)
	require.Equal(t, http.StatusAccepted, d.Status)

	// Four retries at most.
	var calls atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	r = newRelay(t, objects(down.URL, notificationv1beta3.GenericHMACProvider)...)
	post(t, r, kustomizationEvent())
	r.Wait()
	d = r.Deliveries()[0]
	require.Error(t, d.Err)
	require.Equal(t, 1+Retries, d.Attempts)
	require.EqualValues(t, 1+Retries, calls.Load())

	// A client error is final.
	s = newSink(t, http.StatusUnauthorized)
	r = newRelay(t, objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)...)
	post(t, r, kustomizationEvent())
	r.Wait()
	d = r.Deliveries()[0]
	require.ErrorContains(t, d.Err, "401")
	require.Equal(t, 1, d.Attempts)
}

func TestRelayProviders(t *testing.T) {
	t.Run("generic sends no signature", func(t *testing.T) {
		s := newSink(t)
		r := newRelay(t, objects(s.srv.URL, notificationv1beta3.GenericProvider)...)
		post(t, r, kustomizationEvent())
		r.Wait()
		require.NoError(t, r.Deliveries()[0].Err)
		require.Empty(t, s.headers[0].Get("X-Signature"))
	})
	t.Run("suspended provider", func(t *testing.T) {
		s := newSink(t)
		objs := objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)
		objs[1].(*notificationv1beta3.Provider).Spec.Suspend = true
		r := newRelay(t, objs...)
		require.Equal(t, http.StatusAccepted, post(t, r, kustomizationEvent()))
		r.Wait()
		require.Empty(t, r.Deliveries())
	})
	t.Run("address from the secret", func(t *testing.T) {
		s := newSink(t)
		objs := objects("http://127.0.0.1:1/unused", notificationv1beta3.GenericHMACProvider)
		objs[0].(*corev1.Secret).Data["address"] = []byte(s.srv.URL)
		r := newRelay(t, objs...)
		post(t, r, kustomizationEvent())
		r.Wait()
		require.NoError(t, r.Deliveries()[0].Err)
		require.Equal(t, s.srv.URL, r.Deliveries()[0].Address)
	})
	t.Run("generic-hmac without token", func(t *testing.T) {
		s := newSink(t)
		objs := objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)
		delete(objs[0].(*corev1.Secret).Data, "token")
		r := newRelay(t, objs...)
		post(t, r, kustomizationEvent())
		r.Wait()
		require.ErrorContains(t, r.Deliveries()[0].Err, "needs a token")
		require.Empty(t, s.bodies)
	})
	t.Run("other provider types", func(t *testing.T) {
		s := newSink(t)
		r := newRelay(t, objects(s.srv.URL, notificationv1beta3.SlackProvider)...)
		post(t, r, kustomizationEvent())
		r.Wait()
		require.ErrorContains(t, r.Deliveries()[0].Err, "not implemented by the stand-in")
	})
	t.Run("no matching alert", func(t *testing.T) {
		s := newSink(t)
		r := newRelay(t, objects(s.srv.URL, notificationv1beta3.GenericHMACProvider)...)
		ev := kustomizationEvent()
		ev.InvolvedObject.Kind = "HelmRelease"
		require.Equal(t, http.StatusAccepted, post(t, r, ev))
		r.Wait()
		require.Empty(t, r.Deliveries())
	})
	t.Run("not an event", func(t *testing.T) {
		r := newRelay(t)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte("{"))))
		require.Equal(t, http.StatusBadRequest, rec.Code)
	})
}
