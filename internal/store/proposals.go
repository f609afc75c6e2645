package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Proposal is a change of a resource that waits for approvals (gitops_resources.pending): the
// whole new config and repository, or a deletion. It never touches the live row until the
// approval that releases it.
type Proposal struct {
	Config       json.RawMessage `json:"config,omitempty"`
	RepositoryID *int64          `json:"repository_id,omitempty"`
	Delete       bool            `json:"delete,omitempty"`
}

// ErrProposalPending: the resource already has a change awaiting approval.
var ErrProposalPending = errors.New("a change to this resource is already awaiting approval")

// HasPending tells whether the resource has a change awaiting approval.
func (r *Resource) HasPending() bool { return len(r.Pending) > 0 && string(r.Pending) != "null" }

// Proposal returns the resource's pending change, nil when it has none.
func (r *Resource) Proposal() (*Proposal, error) {
	if !r.HasPending() {
		return nil, nil
	}
	var p Proposal
	if err := json.Unmarshal(r.Pending, &p); err != nil {
		return nil, fmt.Errorf("gitops resource %d: stored proposal: %w", r.ID, err)
	}
	return &p, nil
}

// Effective is the config the resource will have once its pending change (if any) is
// approved: what dependency and consumer checks compare against.
func (r *Resource) Effective() json.RawMessage {
	if p, err := r.Proposal(); err == nil && p != nil && !p.Delete && len(p.Config) > 0 {
		return p.Config
	}
	return r.Config
}

// ProposeResource stores p as the resource's pending change, held by approval request
// requestID (nil until the caller made it; AttachProposals then names it). The live config is
// left as it is. A resource that already has a pending change is ErrProposalPending.
func (s *Store) ProposeResource(ctx context.Context, db DBTX, id int64, requestID *int64, p Proposal) (*Resource, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	rows, _ := db.Query(ctx, `
		UPDATE gitops_resources SET pending = $2, pending_request_id = $3, updated_at = now()
		WHERE id = $1 AND pending IS NULL RETURNING *`, id, raw, requestID)
	r, err := collectOne[Resource](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("gitops resource %d: %w", id, ErrProposalPending)
	}
	if err != nil {
		return nil, fmt.Errorf("propose change of gitops resource %d: %w", id, err)
	}
	return r, nil
}

// AttachProposals names requestID as the approval request holding the pending changes of ids.
func (s *Store) AttachProposals(ctx context.Context, db DBTX, requestID int64, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := db.Exec(ctx, `
		UPDATE gitops_resources SET pending_request_id = $1
		WHERE id = ANY($2) AND pending IS NOT NULL AND pending_request_id IS NULL`, requestID, ids); err != nil {
		return fmt.Errorf("attach proposals to approval request %d: %w", requestID, err)
	}
	return nil
}

// AttachUnclaimedProposals names requestID as the approval request of every pending change of
// the project that no request holds yet: those the calling transaction proposed (a held
// change attaches its proposals before it commits, so no other transaction's are visible).
func (s *Store) AttachUnclaimedProposals(ctx context.Context, db DBTX, projectID, requestID int64) error {
	if _, err := db.Exec(ctx, `
		UPDATE gitops_resources SET pending_request_id = $2
		WHERE project_id = $1 AND pending IS NOT NULL AND pending_request_id IS NULL`, projectID, requestID); err != nil {
		return fmt.Errorf("attach proposals to approval request %d: %w", requestID, err)
	}
	return nil
}

// Promoted is a resource whose proposal an approval released, as it is now.
type Promoted struct {
	Resource
	// Delete is true for a proposed deletion: the row is unchanged and the caller deletes it.
	Delete bool
}

// PromoteProposals makes the pending changes held by approval request requestID live, in the
// transaction that records its last approval: config and repository take the proposed values
// (a new spec version, to be applied), a created row becomes approved. A proposed deletion is
// returned with Delete set and left for the caller (its own job, or the deploy carrying it).
func (s *Store) PromoteProposals(ctx context.Context, db DBTX, requestID int64) ([]Promoted, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM gitops_resources WHERE pending_request_id = $1 ORDER BY id FOR UPDATE`, requestID)
	held, err := collectAll[Resource](rows)
	if err != nil {
		return nil, fmt.Errorf("list proposals of approval request %d: %w", requestID, err)
	}
	out := make([]Promoted, 0, len(held))
	for _, r := range held {
		p, err := r.Proposal()
		if err != nil {
			return nil, err
		}
		if p == nil || p.Delete {
			if _, err := db.Exec(ctx, `UPDATE gitops_resources SET pending = NULL, pending_request_id = NULL WHERE id = $1`, r.ID); err != nil {
				return nil, fmt.Errorf("clear proposal of gitops resource %d: %w", r.ID, err)
			}
			r.Pending, r.PendingRequestID = nil, nil
			out = append(out, Promoted{Resource: r, Delete: p != nil})
			continue
		}
		rows, _ := db.Query(ctx, `
			UPDATE gitops_resources SET config = $2, repository_id = $3,
				spec_version = CASE WHEN approved THEN spec_version + 1 ELSE spec_version END,
				apply_status = CASE WHEN apply_status = 'deleting' THEN apply_status ELSE 'pending' END,
				apply_error = '', approved = true, pending = NULL, pending_request_id = NULL, updated_at = now()
			WHERE id = $1 RETURNING *`, r.ID, p.Config, p.RepositoryID)
		nr, err := collectOne[Resource](rows)
		if err != nil {
			return nil, fmt.Errorf("promote proposal of gitops resource %d: %w", r.ID, err)
		}
		out = append(out, Promoted{Resource: *nr})
	}
	return out, nil
}

// DiscardProposals drops the pending changes held by approval request requestID, after a
// reject or an expiry: the live rows stay as they were, and rows its held create made are
// deleted (they never reached a cluster). It returns the IDs of the deleted rows.
func (s *Store) DiscardProposals(ctx context.Context, db DBTX, requestID int64) ([]int64, error) {
	rows, _ := db.Query(ctx, `DELETE FROM gitops_resources WHERE pending_request_id = $1 AND NOT approved RETURNING id`, requestID)
	deleted, err := collectInt64(rows)
	if err != nil {
		return nil, fmt.Errorf("delete unapproved resources of approval request %d: %w", requestID, err)
	}
	if _, err := db.Exec(ctx, `
		UPDATE gitops_resources SET pending = NULL, pending_request_id = NULL, updated_at = now()
		WHERE pending_request_id = $1`, requestID); err != nil {
		return nil, fmt.Errorf("discard proposals of approval request %d: %w", requestID, err)
	}
	return deleted, nil
}
