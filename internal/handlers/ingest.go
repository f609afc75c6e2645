package handlers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Group commit of webhook events. Each accepted event is durable before its 202: its row and its
// job are committed. Committing each in a transaction of its own makes the receiver wait on one
// WAL flush per event; instead, events that arrive while a commit is in flight are queued and
// written together by the next one (a multi-row insert and River's InsertManyTx), and each
// request is answered when the batch holding it has committed. There is no timer: a lone event
// commits at once; under load batches grow by themselves.
const (
	// ingestCommitters is how many batches commit at once.
	ingestCommitters = 2
	// ingestMaxBatch bounds one batch.
	ingestMaxBatch = 256
	// ingestTimeout bounds one batch's transaction. It does not follow any one request's
	// context: a sender that hangs up does not abort the others' batch.
	ingestTimeout = 10 * time.Second
)

type ingestItem struct {
	row  *store.FluxEvent
	id   int64 // 0: a redelivery
	err  error
	done chan struct{}
}

// ingester queues events and commits them in batches; the zero value is ready.
type ingester struct {
	mu     sync.Mutex
	queue  []*ingestItem
	active int // goroutines committing batches
}

// ingest stores row and its processing job, batched with whatever else is arriving, and
// returns the row's ID (0 for a redelivery) once they are committed.
func (h *Handler) ingest(row *store.FluxEvent) (int64, error) {
	g := &h.ingester
	it := &ingestItem{row: row, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, it)
	lead := g.active < ingestCommitters
	if lead {
		g.active++
	}
	g.mu.Unlock()
	if lead {
		h.commitBatches(it)
	}
	<-it.done
	return it.id, it.err
}

// commitBatches commits queued batches until mine is done, then hands what is left to a
// goroutine of its own (so this request can answer) or stops when nothing is.
func (h *Handler) commitBatches(mine *ingestItem) {
	g := &h.ingester
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.active--
			g.mu.Unlock()
			return
		}
		if mine != nil && isDone(mine) {
			g.mu.Unlock()
			go h.commitBatches(nil) // takes over this committer's slot
			return
		}
		n := min(len(g.queue), ingestMaxBatch)
		batch := g.queue[:n:n]
		g.queue = append([]*ingestItem(nil), g.queue[n:]...)
		g.mu.Unlock()
		h.commitBatch(batch)
	}
}

func isDone(it *ingestItem) bool {
	select {
	case <-it.done:
		return true
	default:
		return false
	}
}

// commitBatch writes a batch in one transaction. If that fails, each event is tried in a
// transaction of its own, so one bad row never fails the others.
func (h *Handler) commitBatch(batch []*ingestItem) {
	ctx, cancel := context.WithTimeout(context.Background(), ingestTimeout)
	defer cancel()
	// Every waiting request gets an answer, even if writing its batch panics.
	defer func() {
		if p := recover(); p != nil {
			for _, it := range batch {
				if !isDone(it) {
					it.err = fmt.Errorf("store events: panic: %v", p)
					close(it.done)
				}
			}
		}
	}()
	ids, err := h.insertEvents(ctx, batch)
	if err != nil && len(batch) > 1 {
		for _, it := range batch {
			h.commitBatch([]*ingestItem{it})
		}
		return
	}
	for i, it := range batch {
		if err != nil {
			it.err = err
		} else {
			it.id = ids[i]
		}
		close(it.done)
	}
}

func (h *Handler) insertEvents(ctx context.Context, batch []*ingestItem) ([]int64, error) {
	rows := make([]*store.FluxEvent, len(batch))
	for i, it := range batch {
		rows[i] = it.row
	}
	var ids []int64
	err := h.store.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		if ids, err = h.store.InsertFluxEvents(ctx, tx, rows); err != nil {
			return err
		}
		params := make([]river.InsertManyParams, 0, len(ids))
		for _, id := range ids {
			if id != 0 {
				params = append(params, river.InsertManyParams{Args: jobs.FluxEventArgs{EventID: id}})
			}
		}
		if len(params) == 0 {
			return nil
		}
		_, err = h.river.InsertManyTx(ctx, tx, params)
		return err
	})
	return ids, err
}
