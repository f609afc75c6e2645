package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Hub fans the change feed out to the subscribers of one process. It holds one connection of
// its own, LISTENs on Channel and, on each notification, on each PollInterval tick and after
// each reconnect, reads the events after its cursor (Read, so in order and without gaps) and
// hands them to every subscriber whose match accepts them. Receiver replicas each run a Hub on
// the same database; each sees every event.
//
// A subscriber that does not keep up does not slow the hub down: when its buffer is full it is
// marked lagged and its channel closed. The SSE stream then ends, and the browser reconnects
// with Last-Event-ID and catches up from the database.
type Hub struct {
	pool *pgxpool.Pool
	log  zerolog.Logger

	// PollInterval is how often the hub reads without a notification, for events held back
	// behind a transaction that was still open when it was notified. Default 2s.
	PollInterval time.Duration
	// BatchSize is the number of rows per Read. Default DefaultBatch.
	BatchSize int
	// MinBackoff and MaxBackoff bound the wait between reconnects. Defaults 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex
	subs    map[*Sub]struct{}
	cursor  int64 // the seq of the last event fanned out
	started bool  // cursor is set
	stopped bool  // Run has returned
}

// NewHub returns a hub reading from pool. Set its fields before Run.
func NewHub(pool *pgxpool.Pool, log zerolog.Logger) *Hub {
	return &Hub{
		pool:  pool,
		log:   log.With().Str("component", "feed").Logger(),
		ready: make(chan struct{}),
		subs:  make(map[*Sub]struct{}),
	}
}

// Sub is one subscription to a Hub.
type Sub struct {
	// C receives the events after the subscription's start, in seq order. It is closed when
	// the subscriber lagged, when Close is called and when the hub stops.
	C <-chan Event

	ch     chan Event
	hub    *Hub
	after  int64
	match  func(Event) bool
	lagged atomic.Bool
}

// Subscribe registers a subscriber for the events after seq after that match accepts (all,
// when match is nil), with a buffer of buf events (default 64). match runs on the hub's
// goroutine: keep it cheap and free of I/O.
//
// To catch up without a gap, subscribe first, then Read from the database from after, then
// take events from C skipping those with a seq not above the last one read: every event the
// hub had fanned out before the subscription was registered is visible to that Read.
func (h *Hub) Subscribe(after int64, match func(Event) bool, buf int) *Sub {
	if buf <= 0 {
		buf = 64
	}
	ch := make(chan Event, buf)
	s := &Sub{C: ch, ch: ch, hub: h, after: after, match: match}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		close(ch)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Close ends the subscription and closes C. It may be called more than once.
func (s *Sub) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.ch)
	}
}

// Lagged tells whether C was closed because the subscriber fell behind.
func (s *Sub) Lagged() bool { return s.lagged.Load() }

// Ready is closed once the hub listens and knows its cursor for the first time.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Cursor returns the seq of the last event the hub fanned out.
func (h *Hub) Cursor() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cursor
}

// Subscribers returns the number of open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Run runs the hub until ctx ends, reconnecting with backoff when its connection fails. It
// closes every subscription when it returns; call it once.
func (h *Hub) Run(ctx context.Context) error {
	defer h.stop()
	minB, maxB := h.MinBackoff, h.MaxBackoff
	if minB <= 0 {
		minB = 100 * time.Millisecond
	}
	if maxB < minB {
		maxB = max(10*time.Second, minB)
	}
	backoff := minB
	for {
		listened, err := h.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if listened {
			backoff = minB
		}
		h.log.Warn().Err(err).Dur("retry_in", backoff).Msg("change feed connection lost")
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxB)
	}
}

// session runs one connection: LISTEN, catch up, then read on each notification or tick.
// listened tells whether it got as far as listening.
func (h *Hub) session(ctx context.Context) (listened bool, err error) {
	pc, err := h.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquire: %w", err)
	}
	// The connection leaves the pool: it is never handed to anyone else while it listens.
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "SET application_name = 'fluxbridge-feed'"); err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return false, fmt.Errorf("listen: %w", err)
	}
	if err := h.start(ctx, conn); err != nil {
		return false, err
	}
	h.readyOnce.Do(func() { close(h.ready) })
	poll := h.PollInterval
	if poll <= 0 {
		poll = 2 * time.Second
	}
	for {
		if err := h.catchUp(ctx, conn); err != nil {
			return true, err
		}
		wctx, cancel := context.WithTimeout(ctx, poll)
		_, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			if timedOut && errors.Is(err, context.DeadlineExceeded) {
				continue // poll tick
			}
			return true, fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// start sets the cursor the first time the hub connects: the watermark, or the earliest start
// of a subscription made before, so that it misses nothing either. Later sessions go on from
// the cursor.
func (h *Hub) start(ctx context.Context, conn *pgx.Conn) error {
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if started {
		return nil
	}
	seq, err := Latest(ctx, conn)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		seq = min(seq, s.after)
	}
	h.cursor, h.started = seq, true
	return nil
}

// catchUp reads and fans out every event after the cursor.
func (h *Hub) catchUp(ctx context.Context, conn *pgx.Conn) error {
	batch := h.BatchSize
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		evs, err := Read(ctx, conn, h.Cursor(), nil, batch)
		if err != nil {
			return err
		}
		h.publish(evs)
		if len(evs) < batch {
			return nil
		}
	}
}

func (h *Hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		for s := range h.subs {
			if ev.Seq <= s.after || (s.match != nil && !s.match(ev)) {
				continue
			}
			select {
			case s.ch <- ev:
			default:
				s.lagged.Store(true)
				delete(h.subs, s)
				close(s.ch)
			}
		}
		h.cursor = ev.Seq
	}
}

func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.ch)
	}
}
