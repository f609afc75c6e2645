package feed_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/feed"
)

// sseServer serves st on a loopback httptest server; ?project=<id> picks the project. It counts
// the handlers running and keeps the error of the last one that returned.
type sseServer struct {
	*httptest.Server
	active  atomic.Int64
	lastErr chan error
}

func newSSEServer(t testing.TB, st *feed.Streamer, allow func(feed.Event) bool) *sseServer {
	t.Helper()
	s := &sseServer{lastErr: make(chan error, 1024)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		var project *int64
		if v := r.URL.Query().Get("project"); v != "" {
			p, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				http.Error(w, "bad project", http.StatusBadRequest)
				return
			}
			project = &p
		}
		err := st.Serve(w, r, project, allow)
		select {
		case s.lastErr <- err:
		default:
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// idle waits until no handler runs.
func (s *sseServer) idle(t testing.TB) {
	t.Helper()
	require.Eventually(t, func() bool { return s.active.Load() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestSSEResume: a browser reads some events, goes away, more are written, and it reconnects
// with Last-Event-ID (or last_event_id): it gets exactly the ones it missed, then the live ones.
func TestSSEResume(t *testing.T) {
	f := newFixture(t)
	hub := startHub(t, f.pool)
	srv := newSSEServer(t, &feed.Streamer{Hub: hub, DB: f.pool}, nil)
	client := srv.Client()

	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))
	require.NoError(t, resp.Body.Close())

	c := openSSE(t, client, srv.URL, "") // from now
	var first []int64
	for i := range 3 {
		n := notify(t, f.pool, 0, "first-"+strconv.Itoa(i))
		ev := c.next(t)
		require.Equal(t, "notification", ev.Event)
		require.Equal(t, n, ev.Ev.RefID)
		require.Equal(t, strconv.FormatInt(ev.Ev.Seq, 10), ev.ID)
		require.Equal(t, "first-"+strconv.Itoa(i), payload(t, ev.Ev)["title"])
		first = append(first, ev.Ev.Seq)
	}
	c.close()
	srv.idle(t)
	lastID := strconv.FormatInt(first[2], 10)

	var missed []int64
	for range 4 {
		n := notify(t, f.pool, 0, "missed")
		missed = append(missed, n)
	}
	check := func(c *sseClient) {
		t.Helper()
		for _, n := range missed {
			ev := c.next(t)
			require.Equal(t, n, ev.Ev.RefID)
		}
		c.none(t, 300*time.Millisecond)
	}
	c2 := openSSE(t, client, srv.URL, lastID)
	check(c2)
	c3 := openSSE(t, client, srv.URL+"?last_event_id="+lastID, "")
	check(c3)
	live := notify(t, f.pool, 0, "live")
	require.Equal(t, live, c2.next(t).Ev.RefID)
	require.Equal(t, live, c3.next(t).Ev.RefID)
	c2.none(t, 200*time.Millisecond)

	resp, err = client.Get(srv.URL + "?last_event_id=abc")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

// TestSSEProjectFilter: a stream of project A, and an all-projects stream whose allow admits A
// only, deliver nothing of project B nor of no project, live or caught up; the heartbeat moves
// the browser's Last-Event-ID past what it filtered out.
func TestSSEProjectFilter(t *testing.T) {
	f := newFixture(t)
	hub := startHub(t, f.pool)
	a := f.project()
	allowA := func(ev feed.Event) bool { return ev.ProjectID != nil && *ev.ProjectID == a }
	srv := newSSEServer(t, &feed.Streamer{Hub: hub, DB: f.pool, Heartbeat: 50 * time.Millisecond}, allowA)
	client := srv.Client()

	byProject := openSSE(t, client, srv.URL+"?project="+strconv.FormatInt(a, 10), "")
	byAllow := openSSE(t, client, srv.URL, "")
	deploy(t, f.pool, f.other, f.otherEnv, "b1")
	a1 := deploy(t, f.pool, a, f.seed.Env.ID, "a1")
	notify(t, f.pool, 0, "nobody's")
	notify(t, f.pool, f.other, "b's")
	a2 := deploy(t, f.pool, a, f.seed.Env.ID, "a2")
	b2 := deploy(t, f.pool, f.other, f.otherEnv, "b2")
	for _, c := range []*sseClient{byProject, byAllow} {
		require.Equal(t, a1, c.next(t).Ev.RefID)
		require.Equal(t, a2, c.next(t).Ev.RefID)
		c.none(t, 300*time.Millisecond)
	}
	evs := readAll(t, f.pool, 0, nil)
	lastB := evs[len(evs)-1]
	require.Equal(t, b2, lastB.RefID)
	require.Eventually(t, func() bool {
		select {
		case id := <-byAllow.pings:
			return id == strconv.FormatInt(lastB.Seq, 10)
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond, "a ping carries the ID of the last event filtered out")

	// Catching up from the start: the seed's rows of A, nothing else.
	for _, url := range []string{srv.URL, srv.URL + "?project=" + strconv.FormatInt(a, 10)} {
		c := openSSE(t, client, url, "0")
		var n int
		for {
			select {
			case ev := <-c.events:
				require.Equal(t, a, *ev.Ev.ProjectID)
				n++
				continue
			case <-time.After(300 * time.Millisecond):
			}
			break
		}
		require.Equal(t, 3+2, n, "three resources of the seed, two deployments")
		c.close()
	}
}

// TestSSELaggedStreamEnds: a stream whose handler falls behind the hub ends with ErrLagged
// instead of holding the hub up; the client sees the end and reconnects.
func TestSSELaggedStreamEnds(t *testing.T) {
	f := newFixture(t)
	hub := startHub(t, f.pool)
	gate, stuck := make(chan struct{}), make(chan struct{}, 1)
	allow := func(feed.Event) bool { // stuck on the first event
		select {
		case stuck <- struct{}{}:
		default:
		}
		<-gate
		return true
	}
	srv := newSSEServer(t, &feed.Streamer{Hub: hub, DB: f.pool, Buffer: 2}, allow)
	c := openSSE(t, srv.Client(), srv.URL, "")
	other := hub.Subscribe(hub.Cursor(), nil, 64)
	defer other.Close()
	notify(t, f.pool, 0, "n")
	<-stuck
	for range 4 {
		notify(t, f.pool, 0, "n")
	}
	for range 5 {
		next(t, other) // the hub went on
	}
	close(gate)
	var got int
	for range c.events {
		got++
	}
	require.Equal(t, 3, got, "the one it was stuck on and the buffer")
	srv.idle(t)
	require.ErrorIs(t, <-srv.lastErr, feed.ErrLagged)
	require.Equal(t, 1, hub.Subscribers())
}

// TestSSENoGoroutineLeak: streams that end, whether the client or the hub goes, leave nothing
// running behind.
func TestSSENoGoroutineLeak(t *testing.T) {
	f := newFixture(t)
	before := runtime.NumGoroutine()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		hub := feed.NewHub(f.pool, testLog(t))
		done := make(chan error, 1)
		go func() { done <- hub.Run(ctx) }()
		<-hub.Ready()
		st := &feed.Streamer{Hub: hub, DB: f.pool, Heartbeat: 20 * time.Millisecond}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = st.Serve(w, r, nil, nil)
		}))
		client := srv.Client()
		var clients []*sseClient
		for range 20 {
			clients = append(clients, openSSE(t, client, srv.URL, ""))
		}
		notify(t, f.pool, 0, "n")
		for _, c := range clients {
			c.next(t)
		}
		for _, c := range clients[:10] {
			c.close() // the client goes
		}
		cancel() // the hub goes: the other streams end
		require.NoError(t, <-done)
		for _, c := range clients[10:] {
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				t.Fatal("stream still open after the hub stopped")
			}
		}
		client.CloseIdleConnections()
		srv.Close()
	}()
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+2 }, 5*time.Second, 20*time.Millisecond,
		"goroutines: %d before, %d after", before, runtime.NumGoroutine())
}

// TestSSEOutlivesServerTimeouts: behind the receiver's middleware wrappers and its server
// timeouts, a stream stays open past ReadTimeout and WriteTimeout and keeps delivering.
func TestSSEOutlivesServerTimeouts(t *testing.T) {
	f := newFixture(t)
	hub := startHub(t, f.pool)
	st := &feed.Streamer{Hub: hub, DB: f.pool, Heartbeat: 100 * time.Millisecond, WriteTimeout: 250 * time.Millisecond}
	errs := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor) // as the receiver's instrument does
		errs <- st.Serve(ww, r, nil, nil)
	}))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c := openSSE(t, srv.Client(), srv.URL, "")
	time.Sleep(time.Second)
	n := notify(t, f.pool, 0, "still there")
	require.Equal(t, n, c.next(t).Ev.RefID)
	select {
	case err := <-errs:
		t.Fatalf("stream ended: %v", err)
	default:
	}
}
