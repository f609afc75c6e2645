package handlers

import (
	"errors"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxEventBytes caps a webhook body: 1 MiB, far above the 39,000-character message limit Flux
// puts on events.
const maxEventBytes = 1 << 20

// fluxEventResp is the 202 body.
type fluxEventResp struct {
	EventID   int64 `json:"event_id,omitempty"`
	Duplicate bool  `json:"duplicate"`
}

// fluxEvent receives one event from a cluster's notification-controller. In order: the cluster
// must be configured (404); the body is read once, capped (413); the delivery is authenticated
// (401); the event is decoded and checked (400). Then the event row and its processing job are
// written in one transaction (shared with the events arriving meanwhile: see ingest), and 202
// is sent only after the commit. A redelivery of an event
// already stored (same fingerprint) is acknowledged with 202 and writes nothing.
func (h *Handler) fluxEvent(w http.ResponseWriter, r *http.Request) {
	cluster := chi.URLParam(r, "cluster")
	result := "error"
	defer func() { h.metrics.Webhook.WithLabelValues(cluster, result).Inc() }()

	key, ok := h.tokens[cluster]
	if !ok {
		result, cluster = "unknown_cluster", "unknown" // keep label cardinality bounded
		h.fail(w, r, errNotFound("unknown cluster"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			result = "too_large"
			h.fail(w, r, &httpError{Status: http.StatusRequestEntityTooLarge, Msg: "event body exceeds 1 MiB"})
			return
		}
		result = "invalid"
		h.fail(w, r, errBadRequest("", "read body: %v", err))
		return
	}
	if err := verifyDelivery(r.Header, body, key); err != nil {
		result = "unauthorized"
		w.Header().Set("WWW-Authenticate", `Bearer realm="fluxbridge"`)
		h.fail(w, r, &httpError{Status: http.StatusUnauthorized, Msg: err.Error()})
		return
	}
	ev, err := fluxevent.Decode(body)
	if err != nil {
		result = "invalid"
		var fe *fluxevent.FieldError
		if errors.As(err, &fe) {
			h.fail(w, r, errBadRequest(fe.Field, "%s", fe.Reason))
		} else {
			h.fail(w, r, errBadRequest("", "%v", err))
		}
		return
	}

	fp := ev.Fingerprint(cluster)
	o := ev.InvolvedObject
	row := &store.FluxEvent{
		Cluster: cluster, Fingerprint: fp[:], EventTime: ev.Timestamp.UTC(), APIVersion: o.APIVersion,
		Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, UID: string(o.UID), Severity: ev.Severity,
		Reason: ev.Reason, Message: ev.Message, Revision: ev.Revision(),
		ReportingController: ev.ReportingController, Metadata: ev.Metadata,
	}
	var resp fluxEventResp
	resp.EventID, err = h.ingest(row)
	resp.Duplicate = err == nil && resp.EventID == 0
	if err != nil {
		h.fail(w, r, err)
		return
	}
	result = "accepted"
	if resp.Duplicate {
		result = "duplicate"
	}
	hlog.FromRequest(r).Debug().Str("cluster", cluster).Str("kind", o.Kind).Str("name", o.Namespace+"/"+o.Name).
		Str("reason", ev.Reason).Bool("duplicate", resp.Duplicate).Msg("flux event")
	writeJSON(w, http.StatusAccepted, resp)
}
