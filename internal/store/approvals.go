package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Approval request states. A pending request whose expires_at has passed reads as expired
// even before the expiry job has marked it so.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
	ApprovalExpired  = "expired"
)

// Vote decisions.
const (
	VoteApprove = "approve"
	VoteReject  = "reject"
)

// ApprovalRequest is one row of approval_requests: a change held until enough people approve.
type ApprovalRequest struct {
	ID                int64           `db:"id" json:"id"`
	ProjectID         int64           `db:"project_id" json:"project_id"`
	EnvironmentID     *int64          `db:"environment_id" json:"environment_id"`
	Action            string          `db:"action" json:"action"`
	TargetType        string          `db:"target_type" json:"target_type"`
	TargetID          int64           `db:"target_id" json:"target_id"`
	Summary           string          `db:"summary" json:"summary"`
	RequestedBy       int64           `db:"requested_by" json:"requested_by"`
	RequiredApprovals int             `db:"required_approvals" json:"required_approvals"`
	State             string          `db:"state" json:"state"`
	JobKind           string          `db:"job_kind" json:"job_kind"`
	JobArgs           json.RawMessage `db:"job_args" json:"job_args"`
	JobOpts           json.RawMessage `db:"job_opts" json:"-"`
	JobID             *int64          `db:"job_id" json:"job_id"`
	ExpiresAt         *time.Time      `db:"expires_at" json:"expires_at"`
	DecidedAt         *time.Time      `db:"decided_at" json:"decided_at"`
	DecidedBy         *int64          `db:"decided_by" json:"decided_by"`
	Reason            string          `db:"reason" json:"reason"`
	CreatedAt         time.Time       `db:"created_at" json:"created_at"`
}

// approvalCols reads a request with its effective state.
const approvalCols = `id, project_id, environment_id, action, target_type, target_id, summary, requested_by,
	required_approvals,
	CASE WHEN state = 'pending' AND expires_at <= now() THEN 'expired' ELSE state END AS state,
	job_kind, job_args, job_opts, job_id, expires_at, decided_at, decided_by, reason, created_at`

// NewApprovalRequest holds what CreateApprovalRequest needs.
type NewApprovalRequest struct {
	ProjectID         int64
	EnvironmentID     *int64
	Action            string
	TargetType        string
	TargetID          int64
	Summary           string
	RequestedBy       int64
	RequiredApprovals int
	JobKind           string
	JobArgs           json.RawMessage
	JobOpts           json.RawMessage
	ExpiresAt         *time.Time
}

// CreateApprovalRequest stores a pending request. A second pending request for the same target
// violates approval_requests_pending_target.
func (s *Store) CreateApprovalRequest(ctx context.Context, db DBTX, a NewApprovalRequest) (*ApprovalRequest, error) {
	if len(a.JobOpts) == 0 {
		a.JobOpts = json.RawMessage(`{}`)
	}
	rows, _ := db.Query(ctx, `
		INSERT INTO approval_requests (project_id, environment_id, action, target_type, target_id, summary,
			requested_by, required_approvals, job_kind, job_args, job_opts, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING `+approvalCols,
		a.ProjectID, a.EnvironmentID, a.Action, a.TargetType, a.TargetID, a.Summary,
		a.RequestedBy, a.RequiredApprovals, a.JobKind, a.JobArgs, a.JobOpts, a.ExpiresAt)
	out, err := collectOne[ApprovalRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("insert approval request: %w", err)
	}
	return out, nil
}

// ApprovalRequestByID returns one request.
func (s *Store) ApprovalRequestByID(ctx context.Context, db DBTX, id int64) (*ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `SELECT `+approvalCols+` FROM approval_requests WHERE id = $1`, id)
	out, err := collectOne[ApprovalRequest](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("approval request %d", id))
	}
	return out, nil
}

// ApprovalRequestByJob returns the request whose approval released River job jobID; a job
// that was never held is ErrNotFound.
func (s *Store) ApprovalRequestByJob(ctx context.Context, db DBTX, jobID int64) (*ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `SELECT `+approvalCols+` FROM approval_requests WHERE job_id = $1`, jobID)
	out, err := collectOne[ApprovalRequest](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("approval request of job %d", jobID))
	}
	return out, nil
}

// LockApprovalRequest returns a request with its row locked until the transaction ends. Votes
// on one request therefore run one at a time, and each sees the votes before it.
func (s *Store) LockApprovalRequest(ctx context.Context, db DBTX, id int64) (*ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `SELECT `+approvalCols+` FROM approval_requests WHERE id = $1 FOR UPDATE`, id)
	out, err := collectOne[ApprovalRequest](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("approval request %d", id))
	}
	return out, nil
}

// ApprovalFilter narrows ListApprovalRequests; zero fields match everything.
type ApprovalFilter struct {
	ProjectID     int64
	EnvironmentID int64
	State         string // effective state
	TargetType    string
	TargetID      int64
	BeforeID      int64
	Limit         int
}

// ListApprovalRequests returns requests newest first, at most f.Limit (default 50).
func (s *Store) ListApprovalRequests(ctx context.Context, db DBTX, f ApprovalFilter) ([]ApprovalRequest, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, _ := db.Query(ctx, `
		SELECT * FROM (SELECT `+approvalCols+` FROM approval_requests
			WHERE ($1 = 0 OR project_id = $1) AND ($2 = 0 OR environment_id = $2)
			  AND ($3 = '' OR target_type = $3) AND ($4 = 0 OR target_id = $4) AND ($5 = 0 OR id < $5)) r
		WHERE $6 = '' OR r.state = $6
		ORDER BY id DESC LIMIT $7`,
		f.ProjectID, f.EnvironmentID, f.TargetType, f.TargetID, f.BeforeID, f.State, f.Limit)
	out, err := collectAll[ApprovalRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	return out, nil
}

// AllApprovalRequests returns every request f matches (f.BeforeID and f.Limit aside), newest
// first, reading them a page at a time: for checks that must see them all.
func (s *Store) AllApprovalRequests(ctx context.Context, db DBTX, f ApprovalFilter) ([]ApprovalRequest, error) {
	return readAll(func(last *ApprovalRequest, limit int) ([]ApprovalRequest, error) {
		f.BeforeID, f.Limit = 0, limit
		if last != nil {
			f.BeforeID = last.ID
		}
		return s.ListApprovalRequests(ctx, db, f)
	})
}

// AddVote records one person's vote. A second vote by the same person on the same request
// violates approval_votes_pkey.
func (s *Store) AddVote(ctx context.Context, db DBTX, requestID, userID int64, tokenID *int64, decision, reason string) error {
	_, err := db.Exec(ctx, `
		INSERT INTO approval_votes (request_id, user_id, token_id, decision, reason) VALUES ($1, $2, $3, $4, $5)`,
		requestID, userID, tokenID, decision, reason)
	if err != nil {
		return fmt.Errorf("insert vote: %w", err)
	}
	return nil
}

// CountValidApprovals counts the approve votes on a request that still count: their voter is
// not the requester, is not disabled, and is an admin or holds one of roles in the project.
func (s *Store) CountValidApprovals(ctx context.Context, db DBTX, requestID int64, roles []string) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(*) FROM approval_votes v
		JOIN approval_requests r ON r.id = v.request_id
		JOIN users u ON u.id = v.user_id
		LEFT JOIN project_members m ON m.project_id = r.project_id AND m.user_id = v.user_id
		WHERE v.request_id = $1 AND v.decision = 'approve' AND v.user_id <> r.requested_by
		  AND u.disabled_at IS NULL AND (u.is_admin OR m.role = ANY($2))`, requestID, roles).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count approvals of request %d: %w", requestID, err)
	}
	return n, nil
}

// DecideApprovalRequest moves a pending request to state (approved, rejected or expired) and
// reports whether it did; a request that is no longer pending is left alone, so that two
// deciders racing cannot both win. jobID is the released job of an approval.
func (s *Store) DecideApprovalRequest(ctx context.Context, db DBTX, id int64, state string, by *int64, reason string, jobID *int64) (bool, error) {
	tag, err := db.Exec(ctx, `
		UPDATE approval_requests SET state = $2, decided_by = $3, reason = $4, job_id = $5, decided_at = now()
		WHERE id = $1 AND state = 'pending'`, id, state, by, reason, jobID)
	if err != nil {
		return false, fmt.Errorf("decide approval request %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// DueApprovalRequests locks and returns at most limit pending requests whose expiry has passed,
// oldest first, skipping those another transaction holds.
func (s *Store) DueApprovalRequests(ctx context.Context, db DBTX, limit int) ([]ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `
		SELECT `+approvalCols+` FROM approval_requests
		WHERE state = 'pending' AND expires_at <= now()
		ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	out, err := collectAll[ApprovalRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list due approval requests: %w", err)
	}
	return out, nil
}

// Vote is one person's decision on a request, with their names for display and for commit
// trailers (Approved-By).
type Vote struct {
	RequestID   int64     `db:"request_id" json:"request_id"`
	UserID      int64     `db:"user_id" json:"user_id"`
	Username    string    `db:"username" json:"username"`
	DisplayName string    `db:"display_name" json:"display_name"`
	Email       string    `db:"email" json:"email"`
	Decision    string    `db:"decision" json:"decision"`
	Reason      string    `db:"reason" json:"reason"`
	TokenID     *int64    `db:"token_id" json:"token_id"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
}

// ListVotes returns the votes on the given requests in the order they were cast.
func (s *Store) ListVotes(ctx context.Context, db DBTX, requestIDs []int64) ([]Vote, error) {
	rows, _ := db.Query(ctx, `
		SELECT v.request_id, v.user_id, u.username, u.display_name, u.email, v.decision, v.reason, v.token_id, v.created_at
		FROM approval_votes v JOIN users u ON u.id = v.user_id
		WHERE v.request_id = ANY($1) ORDER BY v.created_at, v.user_id`, requestIDs)
	out, err := collectAll[Vote](rows)
	if err != nil {
		return nil, fmt.Errorf("list votes: %w", err)
	}
	return out, nil
}

// PendingApprovalsFor returns the pending requests that wait on user: in projects they are a
// member of (every project for an admin), asked for by someone else, without their vote yet;
// newest first, at most limit. Whether their role may approve there is the policy's to say.
func (s *Store) PendingApprovalsFor(ctx context.Context, db DBTX, userID int64, admin bool, limit int) ([]ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM (SELECT `+approvalCols+` FROM approval_requests ar
			WHERE ar.state = 'pending' AND ar.requested_by <> $1
			  AND ($2 OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = ar.project_id AND m.user_id = $1))
			  AND NOT EXISTS (SELECT 1 FROM approval_votes v WHERE v.request_id = ar.id AND v.user_id = $1)) r
		WHERE r.state = 'pending'
		ORDER BY id DESC LIMIT $3`, userID, admin, limit)
	out, err := collectAll[ApprovalRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list pending approvals of user %d: %w", userID, err)
	}
	return out, nil
}

// ExpiredApprovalsFor returns the requests that expired in the last week while waiting on
// user, as PendingApprovalsFor finds them, newest first.
func (s *Store) ExpiredApprovalsFor(ctx context.Context, db DBTX, userID int64, admin bool, limit int) ([]ApprovalRequest, error) {
	rows, _ := db.Query(ctx, `
		SELECT * FROM (SELECT `+approvalCols+` FROM approval_requests ar
			WHERE ar.state = 'pending' AND ar.expires_at <= now() AND ar.expires_at > now() - interval '7 days'
			  AND ar.requested_by <> $1
			  AND ($2 OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = ar.project_id AND m.user_id = $1))
			UNION ALL
			SELECT `+approvalCols+` FROM approval_requests ar
			WHERE ar.state = 'expired' AND ar.decided_at > now() - interval '7 days'
			  AND ar.requested_by <> $1
			  AND ($2 OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = ar.project_id AND m.user_id = $1))) r
		ORDER BY id DESC LIMIT $3`, userID, admin, limit)
	out, err := collectAll[ApprovalRequest](rows)
	if err != nil {
		return nil, fmt.Errorf("list expired approvals of user %d: %w", userID, err)
	}
	return out, nil
}
