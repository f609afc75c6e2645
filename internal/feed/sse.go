package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// ErrLagged is returned by Serve when the stream fell behind the hub and was ended; the browser
// reconnects and catches up from the database.
var ErrLagged = errors.New("change feed stream lagged")

// Streamer serves the change feed as Server-Sent Events. The zero values of its optional fields
// mean the defaults.
type Streamer struct {
	Hub *Hub
	// DB is where a stream catches up from (the pool).
	DB Querier
	// Heartbeat is the interval of the ": ping" comments that keep proxies from closing an idle
	// stream. Default 15s.
	Heartbeat time.Duration
	// Retry is the reconnect delay sent to the browser. Default 3s.
	Retry time.Duration
	// Buffer is the subscription's buffer in events. Default 64.
	Buffer int
	// BatchSize is the number of rows per catch-up Read. Default DefaultBatch.
	BatchSize int
	// WriteTimeout bounds each write to the client, so that one that stopped reading does not
	// hold its handler forever. Default 30s.
	WriteTimeout time.Duration
}

// ServeSSE serves one stream with the default settings; see Streamer.Serve.
func ServeSSE(w http.ResponseWriter, r *http.Request, hub *Hub, db Querier, projectID *int64, allow func(Event) bool) error {
	s := Streamer{Hub: hub, DB: db}
	return s.Serve(w, r, projectID, allow)
}

// Serve streams the events of project *projectID (all projects when nil) that allow accepts
// (all, when allow is nil) until the client goes away, the request's context ends or the stream
// lags (ErrLagged). allow runs on the request's goroutine for every event of the project: it is
// where the caller checks that the user may see it (rows of no project, such as notifications
// addressed to one user, have a nil ProjectID).
//
// It starts after the Last-Event-ID header or the last_event_id query parameter, else at the
// watermark (Latest), catches up from DB, then goes on with the hub's live events. Each event is
// written as "id: <seq>", "event: <kind>", "data: <Event as JSON>". It writes the response
// itself, a 400 for a malformed ID and a 503 when the watermark cannot be read included; the
// error it returns is for logging only.
func (s *Streamer) Serve(w http.ResponseWriter, r *http.Request, projectID *int64, allow func(Event) bool) error {
	ctx := r.Context()
	after := int64(-1)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after = parseID(v)
		if after < 0 {
			http.Error(w, "malformed Last-Event-ID", http.StatusBadRequest)
			return errors.New("malformed Last-Event-ID")
		}
	} else if v := r.URL.Query().Get("last_event_id"); v != "" {
		after = parseID(v)
		if after < 0 {
			http.Error(w, "malformed last_event_id", http.StatusBadRequest)
			return errors.New("malformed last_event_id")
		}
	}
	if after < 0 {
		seq, err := Latest(ctx, s.DB)
		if err != nil {
			http.Error(w, "change feed unavailable", http.StatusServiceUnavailable)
			return err
		}
		after = seq
	}

	var match func(Event) bool
	if projectID != nil {
		p := *projectID
		match = func(ev Event) bool { return ev.ProjectID != nil && *ev.ProjectID == p }
	}
	// Subscribe before catching up: what the hub fans out from now on comes through sub, what
	// it fanned out before is visible to the catch-up reads.
	sub := s.Hub.Subscribe(after, match, s.Buffer)
	defer sub.Close()

	rc := http.NewResponseController(w)
	// The server's WriteTimeout would end the stream once it passes: each write moves the
	// deadline on instead. (Its ReadTimeout does not apply once the request is read.)
	writeTimeout := s.WriteTimeout
	if writeTimeout <= 0 {
		writeTimeout = 30 * time.Second
	}
	deadline := func() { _ = rc.SetWriteDeadline(time.Now().Add(writeTimeout)) }
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	retry := s.Retry
	if retry <= 0 {
		retry = 3 * time.Second
	}
	buf := make([]byte, 0, 1024)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, retry.Milliseconds(), 10)
	buf = append(buf, "\n\n"...)
	deadline()
	if _, err := w.Write(buf); err != nil {
		return nil
	}
	// The headers go out with the catch-up below, not before it: a client that has the
	// response has everything written before it came.

	last, sentID := after, after // the last event handled; the last ID the client was told
	send := func(ev Event) error {
		last = ev.Seq
		if allow != nil && !allow(ev) {
			return nil
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		buf = buf[:0]
		buf = append(buf, "id: "...)
		buf = strconv.AppendInt(buf, ev.Seq, 10)
		buf = append(buf, "\nevent: "...)
		buf = append(buf, ev.Kind...)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, data...)
		buf = append(buf, "\n\n"...)
		deadline()
		_, err = w.Write(buf)
		sentID = ev.Seq
		return err
	}

	batch := s.BatchSize
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		evs, err := Read(ctx, s.DB, last, projectID, batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, ev := range evs {
			if err := send(ev); err != nil {
				return nil
			}
		}
		if len(evs) < batch {
			break
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
	if err := rc.Flush(); err != nil {
		// http.ErrNotSupported: a middleware's ResponseWriter hides the connection (it needs
		// an Unwrap method).
		return fmt.Errorf("flush event stream: %w", err)
	}

	hb := s.Heartbeat
	if hb <= 0 {
		hb = 15 * time.Second
	}
	ticker := time.NewTicker(hb)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					return ErrLagged
				}
				return nil // the hub stopped
			}
			if ev.Seq <= last {
				continue
			}
			if err := send(ev); err != nil {
				return nil
			}
			if len(sub.C) > 0 {
				continue // flush once for a burst
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		case <-ticker.C:
			buf = append(buf[:0], ": ping\n"...)
			if last > sentID {
				// Events this stream did not show still move the browser's Last-Event-ID on,
				// so that a reconnect does not read them again.
				buf = append(buf, "id: "...)
				buf = strconv.AppendInt(buf, last, 10)
				buf = append(buf, '\n')
				sentID = last
			}
			buf = append(buf, '\n')
			deadline()
			if _, err := w.Write(buf); err != nil {
				return nil
			}
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
	}
}

// parseID returns the seq of an event ID, or -1 when it is not one.
func parseID(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
