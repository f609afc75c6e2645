package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Resource is one row of gitops_resources: a Flux object in one cluster, its settings in Config
// and the last status Flux reported.
type Resource struct {
	ID                    int64           `db:"id" json:"id"`
	ProjectID             int64           `db:"project_id" json:"project_id"`
	EnvironmentID         *int64          `db:"environment_id" json:"environment_id"`
	RepositoryID          *int64          `db:"repository_id" json:"repository_id"`
	Cluster               string          `db:"cluster" json:"cluster"`
	Kind                  string          `db:"kind" json:"kind"`
	Namespace             string          `db:"namespace" json:"namespace"`
	Name                  string          `db:"name" json:"name"`
	Config                json.RawMessage `db:"config" json:"config"`
	Status                string          `db:"status" json:"status"`
	StatusReason          string          `db:"status_reason" json:"status_reason"`
	StatusMessage         string          `db:"status_message" json:"status_message"`
	Conditions            json.RawMessage `db:"conditions" json:"conditions"`
	LastAppliedRevision   string          `db:"last_applied_revision" json:"last_applied_revision"`
	LastAttemptedRevision string          `db:"last_attempted_revision" json:"last_attempted_revision"`
	LastReconcileAt       *time.Time      `db:"last_reconcile_at" json:"last_reconcile_at"`
	StatusObservedAt      *time.Time      `db:"status_observed_at" json:"status_observed_at"`
	ObjectUID             string          `db:"object_uid" json:"object_uid"`
	CreatedAt             time.Time       `db:"created_at" json:"created_at"`
	UpdatedAt             time.Time       `db:"updated_at" json:"updated_at"`

	// SpecVersion counts changes of Config and Suspended; AppliedSpecVersion is the one the
	// apply job last put into the cluster.
	SpecVersion            int64           `db:"spec_version" json:"spec_version"`
	AppliedSpecVersion     int64           `db:"applied_spec_version" json:"applied_spec_version"`
	ApplyStatus            string          `db:"apply_status" json:"apply_status"`
	ApplyError             string          `db:"apply_error" json:"apply_error"`
	AppliedAt              *time.Time      `db:"applied_at" json:"applied_at"`
	Suspended              bool            `db:"suspended" json:"suspended"`
	Generation             int64           `db:"generation" json:"generation"`
	ObservedGeneration     int64           `db:"observed_generation" json:"observed_generation"`
	LastHandledReconcileAt string          `db:"last_handled_reconcile_at" json:"last_handled_reconcile_at"`
	NextReconcileAt        *time.Time      `db:"next_reconcile_at" json:"next_reconcile_at"`
	ChartName              string          `db:"chart_name" json:"chart_name"`
	ChartVersion           string          `db:"chart_version" json:"chart_version"`
	HelmHistory            json.RawMessage `db:"helm_history" json:"helm_history"`

	// Approved is false while the create that made the row waits for approvals: Config is
	// then empty and Pending holds the proposed settings; nothing applies the row.
	Approved bool `db:"approved" json:"approved"`
	// Pending is the change awaiting approval (a Proposal), null when none; PendingRequestID
	// is the approval request that holds it. Config is always the approved, live settings.
	Pending          json.RawMessage `db:"pending" json:"pending"`
	PendingRequestID *int64          `db:"pending_request_id" json:"pending_request_id"`
	// ImportedAt is set on an object that existed in the cluster and was adopted by an admin.
	ImportedAt *time.Time `db:"imported_at" json:"imported_at,omitempty"`
	ImportedBy *int64     `db:"imported_by" json:"-"`
}

// ObjectRef names a Flux object in a cluster.
type ObjectRef struct {
	Cluster, Kind, Namespace, Name string
}

func (r ObjectRef) String() string {
	return fmt.Sprintf("%s %s/%s in cluster %s", r.Kind, r.Namespace, r.Name, r.Cluster)
}

// Ref names the resource's Flux object: its key, and the order of ListResources.
func (r *Resource) Ref() ObjectRef {
	return ObjectRef{Cluster: r.Cluster, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// NewResource holds what CreateResource needs.
type NewResource struct {
	ProjectID     int64
	EnvironmentID *int64
	RepositoryID  *int64
	Cluster       string
	Kind          string
	Namespace     string
	Name          string
	Config        json.RawMessage
	// Proposed creates the row unapproved: Config and RepositoryID become its Pending
	// proposal, to be approved (PromoteProposals) or discarded with the request that holds
	// it (AttachProposals names it).
	Proposed bool
	// ImportedBy marks an adopted object (POST …/resources/import).
	ImportedBy *int64
}

// CreateResource inserts a gitops_resources row.
func (s *Store) CreateResource(ctx context.Context, db DBTX, r NewResource) (*Resource, error) {
	cfg := r.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage(`{}`)
	}
	var pending json.RawMessage
	repoID := r.RepositoryID
	if r.Proposed {
		var err error
		if pending, err = json.Marshal(Proposal{Config: cfg, RepositoryID: r.RepositoryID}); err != nil {
			return nil, err
		}
		cfg, repoID = json.RawMessage(`{}`), nil
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO gitops_resources (project_id, environment_id, repository_id, cluster, kind, namespace, name, config,
			approved, pending, imported_by, imported_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, CASE WHEN $11::bigint IS NULL THEN NULL ELSE now() END)
		RETURNING *`,
		r.ProjectID, r.EnvironmentID, repoID, r.Cluster, r.Kind, r.Namespace, r.Name, cfg, !r.Proposed, pending, r.ImportedBy)
	res, err := collectOne[Resource](rows)
	if err != nil {
		return nil, fmt.Errorf("insert gitops resource: %w", err)
	}
	return res, nil
}

// ResourceByID returns one resource.
func (s *Store) ResourceByID(ctx context.Context, db DBTX, id int64) (*Resource, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM gitops_resources WHERE id = $1`, id)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("gitops resource %d", id))
	}
	return r, nil
}

// LockResourceByRef returns the resource for a Flux object and locks its row until the
// transaction ends, so status updates from concurrent events apply one at a time.
func (s *Store) LockResourceByRef(ctx context.Context, db DBTX, ref ObjectRef) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM gitops_resources
		WHERE cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4
		FOR UPDATE`, ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, ref.String())
	}
	return r, nil
}

// TryLockResourceByRef is LockResourceByRef without the wait: ErrNotFound both when
// fluxbridge manages no such object and when another transaction holds its row.
func (s *Store) TryLockResourceByRef(ctx context.Context, db DBTX, ref ObjectRef) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM gitops_resources
		WHERE cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4
		FOR UPDATE SKIP LOCKED`, ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, ref.String())
	}
	return r, nil
}

// ResourceByRef reads the resource for a live object without locking it; ErrNotFound when
// fluxbridge does not manage one.
func (s *Store) ResourceByRef(ctx context.Context, db DBTX, ref ObjectRef) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM gitops_resources
		WHERE cluster = $1 AND kind = $2 AND namespace = $3 AND name = $4`, ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
	r, err := collectOne[Resource](rows)
	if err != nil {
		return nil, notFound(err, ref.String())
	}
	return r, nil
}

// ResourceFilter narrows ListResources; zero fields match everything.
type ResourceFilter struct {
	ProjectID     int64
	EnvironmentID int64
	Cluster       string
	Kind          string
	Status        string
	After         *ObjectRef // keyset paging: only resources after this one in the list's order
	Limit         int        // DefaultLimit when 0
}

// ListResources returns resources ordered by cluster, kind, namespace and name, at most f.Limit.
func (s *Store) ListResources(ctx context.Context, db DBTX, f ResourceFilter) ([]Resource, error) {
	var a ObjectRef
	if f.After != nil {
		a = *f.After
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM gitops_resources
		WHERE ($1 = 0 OR project_id = $1) AND ($2 = 0 OR environment_id = $2)
		  AND ($3 = '' OR cluster = $3) AND ($4 = '' OR kind = $4) AND ($5 = '' OR status = $5)
		  AND (NOT $6 OR (cluster, kind, namespace, name) > ($7, $8, $9, $10))
		ORDER BY cluster, kind, namespace, name LIMIT $11`,
		f.ProjectID, f.EnvironmentID, f.Cluster, f.Kind, f.Status, f.After != nil, a.Cluster, a.Kind, a.Namespace, a.Name, limitOr(f.Limit))
	out, err := collectAll[Resource](rows)
	if err != nil {
		return nil, fmt.Errorf("list gitops resources: %w", err)
	}
	return out, nil
}

// AllResources returns every resource f matches (f.After and f.Limit aside), in ListResources'
// order, reading them a page at a time: for jobs and checks that must see them all.
func (s *Store) AllResources(ctx context.Context, db DBTX, f ResourceFilter) ([]Resource, error) {
	return readAll(func(last *Resource, limit int) ([]Resource, error) {
		f.After, f.Limit = nil, limit
		if last != nil {
			ref := last.Ref()
			f.After = &ref
		}
		return s.ListResources(ctx, db, f)
	})
}

// StatusUpdate is one observation of a resource's state.
type StatusUpdate struct {
	Status     string // "" keeps the stored status (the observation only refreshes timestamps)
	Reason     string
	Message    string
	Revision   string // the revision attempted; it becomes the applied one when Status is ready
	ObservedAt time.Time
	UID        string
}

// MaxClockSkew is how far ahead of its arrival an observation's own timestamp may be. Beyond it
// the sender's clock is wrong: callers order the observation by its arrival instead
// (ClampFuture), and a stored time that far ahead is treated as older than any observation.
const MaxClockSkew = 2 * time.Minute

// ClampFuture returns at, or arrived when at is more than MaxClockSkew after it; clamped says
// which.
func ClampFuture(at, arrived time.Time) (t time.Time, clamped bool) {
	if at.After(arrived.Add(MaxClockSkew)) {
		return arrived, true
	}
	return at, false
}

// ApplyResourceStatus records an observation unless a newer one is already stored (events can
// arrive out of order); within the same second an outcome wins over "reconciling". It reports
// whether the row changed.
func (s *Store) ApplyResourceStatus(ctx context.Context, db DBTX, id int64, u StatusUpdate) (bool, error) {
	r, err := s.ApplyResourceStatusRow(ctx, db, id, u)
	return r != nil, err
}

// ApplyResourceStatusRow is ApplyResourceStatus returning the row as it left it, or nil when
// a newer observation was stored already (the row is unchanged).
func (s *Store) ApplyResourceStatusRow(ctx context.Context, db DBTX, id int64, u StatusUpdate) (*Resource, error) {
	rows, _ := db.Query(ctx, `
		UPDATE gitops_resources SET
			status                  = COALESCE(NULLIF($2, ''), status),
			status_reason           = CASE WHEN $2 = '' THEN status_reason ELSE $3 END,
			status_message          = CASE WHEN $2 = '' THEN status_message ELSE $4 END,
			last_attempted_revision = COALESCE(NULLIF($5, ''), last_attempted_revision),
			last_applied_revision   = CASE WHEN $2 = 'ready' AND $5 <> '' THEN $5 ELSE last_applied_revision END,
			last_reconcile_at       = CASE WHEN $2 IN ('ready', 'failed') THEN $6 ELSE last_reconcile_at END,
			status_observed_at      = $6,
			object_uid              = COALESCE(NULLIF($7, ''), object_uid),
			updated_at              = now()
		WHERE id = $1 AND (status_observed_at IS NULL OR status_observed_at < $6
			-- Flux timestamps have one-second resolution: within the same second, "reconciling"
			-- never overrides an outcome (its Progressing event precedes the outcome).
			OR (status_observed_at = $6 AND $2 <> 'reconciling')
			-- A stored time beyond the clock skew window (a sender's clock ahead, before such
			-- times were clamped) never freezes the row.
			OR status_observed_at > now() + $8::interval)
		RETURNING *`,
		id, u.Status, u.Reason, u.Message, u.Revision, u.ObservedAt, u.UID, MaxClockSkew)
	out, err := collectAll[Resource](rows)
	if err != nil {
		return nil, fmt.Errorf("update status of gitops resource %d: %w", id, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &out[0], nil
}
