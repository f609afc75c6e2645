package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Discovered is a Flux object of a managed cluster that no project manages, as the watch last
// saw it (discovered_objects): what fluxbridge must never create over, and what an admin may
// import.
type Discovered struct {
	Cluster    string          `db:"cluster" json:"cluster"`
	Kind       string          `db:"kind" json:"kind"`
	Namespace  string          `db:"namespace" json:"namespace"`
	Name       string          `db:"name" json:"name"`
	UID        string          `db:"uid" json:"uid"`
	Owner      string          `db:"owner" json:"owner"`
	Labels     json.RawMessage `db:"labels" json:"labels"`
	Spec       json.RawMessage `db:"spec" json:"spec"`
	Status     string          `db:"status" json:"status"`
	ObservedAt time.Time       `db:"observed_at" json:"observed_at"`
}

// Ref names the object.
func (d *Discovered) Ref() ObjectRef {
	return ObjectRef{Cluster: d.Cluster, Kind: d.Kind, Namespace: d.Namespace, Name: d.Name}
}

// UpsertDiscovered records an unmanaged object, unless a newer observation of it is stored.
func (s *Store) UpsertDiscovered(ctx context.Context, db DBTX, d Discovered) error {
	if len(d.Labels) == 0 {
		d.Labels = json.RawMessage(`{}`)
	}
	if len(d.Spec) == 0 {
		d.Spec = json.RawMessage(`{}`)
	}
	_, err := db.Exec(ctx, `
		INSERT INTO discovered_objects (cluster, kind, namespace, name, uid, owner, labels, spec, status, observed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (cluster, kind, namespace, name) DO UPDATE SET
			uid = EXCLUDED.uid, owner = EXCLUDED.owner, labels = EXCLUDED.labels, spec = EXCLUDED.spec,
			status = EXCLUDED.status, observed_at = EXCLUDED.observed_at
		WHERE discovered_objects.observed_at <= EXCLUDED.observed_at`,
		d.Cluster, d.Kind, d.Namespace, d.Name, d.UID, d.Owner, d.Labels, d.Spec, d.Status, d.ObservedAt)
	if err != nil {
		return fmt.Errorf("record discovered %s: %w", d.Ref(), err)
	}
	return nil
}

// DeleteDiscovered forgets an object: it is gone from the cluster, or a project manages it now.
func (s *Store) DeleteDiscovered(ctx context.Context, db DBTX, ref ObjectRef) error {
	if _, err := db.Exec(ctx, `
		DELETE FROM discovered_objects WHERE cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4`,
		ref.Cluster, ref.Kind, ref.Namespace, ref.Name); err != nil {
		return fmt.Errorf("forget discovered %s: %w", ref, err)
	}
	return nil
}

// DiscoveredByRef returns an unmanaged object, ErrNotFound when the watch knows of none.
func (s *Store) DiscoveredByRef(ctx context.Context, db DBTX, ref ObjectRef) (*Discovered, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM discovered_objects WHERE cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4`,
		ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	d, err := collectOne[Discovered](rows)
	if err != nil {
		return nil, notFound(err, "discovered "+ref.String())
	}
	return d, nil
}

// ListDiscovered returns a cluster's unmanaged objects by kind, namespace and name: at most
// limit (DefaultLimit when 0), those after after (nil: from the first; its Cluster is ignored).
func (s *Store) ListDiscovered(ctx context.Context, db DBTX, cluster string, after *ObjectRef, limit int) ([]Discovered, error) {
	var a ObjectRef
	if after != nil {
		a = *after
	}
	rows, _ := db.Query(ctx, `SELECT * FROM discovered_objects
		WHERE cluster = $1 AND (NOT $2 OR (kind, namespace, name) > ($3, $4, $5))
		ORDER BY kind, namespace, name LIMIT $6`, cluster, after != nil, a.Kind, a.Namespace, a.Name, limitOr(limit))
	out, err := collectAll[Discovered](rows)
	if err != nil {
		return nil, fmt.Errorf("list discovered objects of cluster %s: %w", cluster, err)
	}
	return out, nil
}
