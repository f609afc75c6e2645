package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// FluxEvent is one delivery from notification-controller, as stored in the inbox.
type FluxEvent struct {
	ID                  int64             `db:"id" json:"id"`
	Cluster             string            `db:"cluster" json:"cluster"`
	Fingerprint         []byte            `db:"fingerprint" json:"-"`
	ReceivedAt          time.Time         `db:"received_at" json:"received_at"`
	EventTime           time.Time         `db:"event_time" json:"event_time"`
	APIVersion          string            `db:"api_version" json:"api_version"`
	Kind                string            `db:"kind" json:"kind"`
	Namespace           string            `db:"namespace" json:"namespace"`
	Name                string            `db:"name" json:"name"`
	UID                 string            `db:"uid" json:"uid"`
	Severity            string            `db:"severity" json:"severity"`
	Reason              string            `db:"reason" json:"reason"`
	Message             string            `db:"message" json:"message"`
	Revision            string            `db:"revision" json:"revision"`
	ReportingController string            `db:"reporting_controller" json:"reporting_controller"`
	Metadata            map[string]string `db:"metadata" json:"metadata"`
	ProcessedAt         *time.Time        `db:"processed_at" json:"processed_at"`
}

// InsertFluxEvent stores e unless an event with the same fingerprint is already stored. It
// returns the new row's ID and true, or 0 and false for a redelivery.
func (s *Store) InsertFluxEvent(ctx context.Context, db DBTX, e *FluxEvent) (int64, bool, error) {
	md, err := json.Marshal(e.Metadata)
	if err != nil {
		return 0, false, fmt.Errorf("encode metadata: %w", err)
	}
	rows, err := db.Query(ctx, `
		INSERT INTO flux_events (cluster, fingerprint, event_time, api_version, kind, namespace, name, uid,
			severity, reason, message, revision, reporting_controller, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (fingerprint) DO NOTHING
		RETURNING id`,
		e.Cluster, e.Fingerprint, e.EventTime, e.APIVersion, e.Kind, e.Namespace, e.Name, e.UID,
		e.Severity, e.Reason, e.Message, e.Revision, e.ReportingController, md)
	if err != nil {
		return 0, false, fmt.Errorf("insert flux event: %w", err)
	}
	ids, err := collectInt64(rows)
	if err != nil {
		return 0, false, fmt.Errorf("insert flux event: %w", err)
	}
	if len(ids) == 0 {
		return 0, false, nil
	}
	return ids[0], true, nil
}

// FluxEventByID reads a stored event without locking it.
func (s *Store) FluxEventByID(ctx context.Context, db DBTX, id int64) (*FluxEvent, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM flux_events WHERE id = $1`, id)
	e, err := collectOne[FluxEvent](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("flux event %d", id))
	}
	return e, nil
}

// LockFluxEvent reads an event and locks its row until the transaction ends, so that two
// workers handed the same event (River delivers at least once) process it one after the other.
func (s *Store) LockFluxEvent(ctx context.Context, db DBTX, id int64) (*FluxEvent, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM flux_events WHERE id = $1 FOR UPDATE`, id)
	e, err := collectOne[FluxEvent](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("flux event %d", id))
	}
	return e, nil
}

// LockPendingFluxEventsOf locks, skipping those another transaction holds, up to limit
// unprocessed events of the object ref other than except, oldest first: those at revision
// only, unless anyRevision. The event job uses it to process, under the resource lock it
// holds anyway, the events of a busy object that wait for that lock, in one transaction
// instead of one each.
func (s *Store) LockPendingFluxEventsOf(ctx context.Context, db DBTX, ref ObjectRef, revision string, anyRevision bool, except int64, limit int) ([]FluxEvent, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM flux_events
		WHERE processed_at IS NULL AND cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4
			AND ($8 OR revision = $5) AND id <> $6
		ORDER BY id LIMIT $7
		FOR UPDATE SKIP LOCKED`, ref.Cluster, ref.Kind, ref.Namespace, ref.Name, revision, except, limit, anyRevision)
	evs, err := collectAll[FluxEvent](rows)
	if err != nil {
		return nil, fmt.Errorf("lock pending events of %s: %w", ref, err)
	}
	return evs, nil
}

// MarkFluxEventsProcessed records that the worker has handled the events ids.
func (s *Store) MarkFluxEventsProcessed(ctx context.Context, db DBTX, ids []int64) error {
	_, err := db.Exec(ctx, `UPDATE flux_events SET processed_at = now() WHERE id = ANY($1)`, ids)
	return err
}

// CountUnprocessedFluxEvents returns how many accepted events the worker has not handled yet.
func (s *Store) CountUnprocessedFluxEvents(ctx context.Context, db DBTX) (int64, error) {
	var n int64
	err := db.QueryRow(ctx, `SELECT count(*) FROM flux_events WHERE processed_at IS NULL`).Scan(&n)
	return n, err
}

// InsertFluxEvents stores rows in one statement, skipping those whose fingerprint is already
// stored, and returns for each row its new ID, or 0 for a redelivery (of a stored event, or of
// an earlier row of the same batch).
func (s *Store) InsertFluxEvents(ctx context.Context, db DBTX, rows []*FluxEvent) ([]int64, error) {
	n := len(rows)
	var (
		cluster, apiVersion, kind, namespace, name, uid = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		severity, reason, message, revision, reporter   = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		metadata                                        = make([]string, n)
		fingerprint                                     = make([][]byte, n)
		at                                              = make([]time.Time, n)
	)
	for i, e := range rows {
		md, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata: %w", err)
		}
		cluster[i], fingerprint[i], at[i], apiVersion[i], kind[i], namespace[i], name[i], uid[i] =
			e.Cluster, e.Fingerprint, e.EventTime, e.APIVersion, e.Kind, e.Namespace, e.Name, e.UID
		severity[i], reason[i], message[i], revision[i], reporter[i], metadata[i] =
			e.Severity, e.Reason, e.Message, e.Revision, e.ReportingController, string(md)
	}
	q, err := db.Query(ctx, `
		INSERT INTO flux_events (cluster, fingerprint, event_time, api_version, kind, namespace, name, uid,
			severity, reason, message, revision, reporting_controller, metadata)
		SELECT * FROM unnest($1::text[], $2::bytea[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[])
		ON CONFLICT (fingerprint) DO NOTHING
		RETURNING id, fingerprint`,
		cluster, fingerprint, at, apiVersion, kind, namespace, name, uid, severity, reason, message, revision, reporter, metadata)
	if err != nil {
		return nil, fmt.Errorf("insert flux events: %w", err)
	}
	inserted := map[string]int64{}
	for q.Next() {
		var id int64
		var fp []byte
		if err := q.Scan(&id, &fp); err != nil {
			q.Close()
			return nil, fmt.Errorf("insert flux events: %w", err)
		}
		inserted[string(fp)] = id
	}
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("insert flux events: %w", err)
	}
	ids := make([]int64, n)
	for i, e := range rows {
		if id, ok := inserted[string(e.Fingerprint)]; ok {
			ids[i] = id
			delete(inserted, string(e.Fingerprint)) // a later copy in the batch is a redelivery
		}
	}
	return ids, nil
}
