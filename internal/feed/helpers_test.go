package feed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type fixture struct {
	pool *pgxpool.Pool
	seed *storetest.Seeded
	// other is a second project, with an environment otherEnv.
	other, otherEnv int64
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	pool := storetest.NewDB(t)
	f := &fixture{pool: pool, seed: storetest.Seed(t, store.New(pool), pool)}
	ctx := context.Background()
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO projects (slug, name) VALUES ('other', 'Other') RETURNING id`).Scan(&f.other))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO environments (project_id, name, kind, cluster)
		VALUES ($1, 'dev', 'dev', 'dev-1') RETURNING id`, f.other).Scan(&f.otherEnv))
	// The watermark waits for every older transaction of the Postgres cluster, and other
	// packages' tests run beside these: a test that takes Latest as its start must not find
	// the seed's own events after it.
	var last int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM change_feed`).Scan(&last))
	require.Eventually(t, func() bool {
		l, err := feed.Latest(ctx, pool)
		return err == nil && l >= last
	}, time.Minute, 20*time.Millisecond, "the seed's events become readable")
	return f
}

func (f *fixture) project() int64 { return f.seed.Project.ID }

// deploy inserts a deployment of project into env through db and returns its id.
func deploy(t testing.TB, db store.DBTX, project, env int64, app string) int64 {
	t.Helper()
	var id int64
	require.NoError(t, db.QueryRow(context.Background(), `INSERT INTO deployments (project_id, environment_id, deployment_method, app)
		VALUES ($1, $2, 'manual', $3) RETURNING id`, project, env, app).Scan(&id))
	return id
}

// notify inserts a notification (of no project when project is 0) through db.
func notify(t testing.TB, db store.DBTX, project int64, title string) int64 {
	t.Helper()
	var p *int64
	if project != 0 {
		p = &project
	}
	var id int64
	require.NoError(t, db.QueryRow(context.Background(), `INSERT INTO notifications (project_id, severity, title)
		VALUES ($1, 'info', $2) RETURNING id`, p, title).Scan(&id))
	return id
}

func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// startHub runs a hub on pool until the test ends and waits until it listens.
func startHub(t testing.TB, pool *pgxpool.Pool) *feed.Hub {
	t.Helper()
	h := feed.NewHub(pool, testLog(t))
	runHub(t, h)
	return h
}

// runHub runs h until the test ends and waits until it listens.
func runHub(t testing.TB, h *feed.Hub) {
	t.Helper()
	h.PollInterval = 200 * time.Millisecond
	h.MinBackoff = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("hub did not stop")
		}
	})
	select {
	case <-h.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("hub not ready")
	}
}

// next returns the next event of sub, failing after a timeout.
func next(t testing.TB, sub *feed.Sub) feed.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.C:
		require.True(t, ok, "subscription closed (lagged %v)", sub.Lagged())
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return feed.Event{}
	}
}

// none checks that sub gets nothing for a while.
func none(t testing.TB, sub *feed.Sub, d time.Duration) {
	t.Helper()
	select {
	case ev := <-sub.C:
		t.Fatalf("unexpected event %d %s", ev.Seq, ev.Kind)
	case <-time.After(d):
	}
}

func readAll(t testing.TB, db feed.Querier, after int64, project *int64) []feed.Event {
	t.Helper()
	evs, err := feed.Read(context.Background(), db, after, project, 0)
	require.NoError(t, err)
	return evs
}

// readWait reads until at least n events are delivered (or 15 s pass): delivery waits for every
// older transaction of the whole Postgres cluster, and other packages' tests run beside these.
func readWait(t testing.TB, db feed.Querier, after int64, n int) []feed.Event {
	t.Helper()
	evs := readAll(t, db, after, nil)
	for deadline := time.Now().Add(15 * time.Second); len(evs) < n && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		evs = readAll(t, db, after, nil)
	}
	return evs
}

func seqs(evs []feed.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func payload(t testing.TB, ev feed.Event) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(ev.Payload, &m))
	return m
}

// sseEvent is one event read off a stream.
type sseEvent struct {
	ID, Event string
	Ev        feed.Event
}

// sseClient reads a stream on a goroutine of its own.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
	retry  chan string
	pings  chan string // the id that came with a ping, or ""
	cancel context.CancelFunc
	done   chan struct{}
}

// openSSE opens url with Last-Event-ID lastID (none when empty) and waits for the stream to
// start (its retry line).
func openSSE(t testing.TB, client *http.Client, url, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := client.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1024), retry: make(chan string, 1),
		pings: make(chan string, 64), cancel: cancel, done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	select {
	case r := <-c.retry:
		require.Equal(t, "3000", r)
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not start")
	}
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.events)
	br := bufio.NewReader(c.resp.Body)
	var id, event, data string
	var ping, hasID bool
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			switch {
			case data != "":
				var ev feed.Event
				_ = json.Unmarshal([]byte(data), &ev)
				c.events <- sseEvent{ID: id, Event: event, Ev: ev}
			case ping:
				pid := ""
				if hasID {
					pid = id
				}
				select {
				case c.pings <- pid:
				default:
				}
			}
			event, data, ping, hasID = "", "", false, false
		case strings.HasPrefix(line, ":"):
			ping = true
		case strings.HasPrefix(line, "retry: "):
			select {
			case c.retry <- strings.TrimPrefix(line, "retry: "):
			default:
			}
		case strings.HasPrefix(line, "id: "):
			id, hasID = strings.TrimPrefix(line, "id: "), true
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	_ = c.resp.Body.Close()
	<-c.done
}

func (c *sseClient) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		require.True(t, ok, "stream ended")
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the stream")
		return sseEvent{}
	}
}

func (c *sseClient) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if ok {
			t.Fatalf("unexpected event %s %s", ev.ID, ev.Event)
		}
	case <-time.After(d):
	}
}
