// Package approval holds changes until enough people approve them (the two-person rule). A
// handler submits the River job that carries out a change in the same transaction as the
// change's domain row: with no approvals required the job is inserted at once; otherwise an
// approval request stores the job (kind, args, insert options) and the last approval inserts
// it, in the transaction that records that approval. Votes on a request are serialised by a row
// lock, so two approvers racing release the job exactly once.
package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Target types: the domain rows whose status follows their request. A new target type that has
// a status to settle gets a case in settle.
const (
	TargetDeployment  = "deployment"
	TargetEnvironment = "environment"
	TargetResource    = "gitops_resource"
)

// Refusals. Each is wrapped with a message that names the request.
var (
	// ErrNotPending: the request was already approved, rejected or has expired.
	ErrNotPending = errors.New("approval request is no longer pending")
	// ErrSelfApproval: the requester tried to approve their own change.
	ErrSelfApproval = errors.New("the requester of a change cannot approve it")
	// ErrAlreadyVoted: the person already approved this request.
	ErrAlreadyVoted = errors.New("you already voted on this request")
	// ErrPendingExists: the target already has a change awaiting approval.
	ErrPendingExists = errors.New("a change to this target is already awaiting approval")
)

// Service submits, holds and releases jobs.
type Service struct {
	store *store.Store
	river *river.Client[pgx.Tx]
}

// New returns a Service. rc may be nil for a service that only expires requests.
func New(st *store.Store, rc *river.Client[pgx.Tx]) *Service { return &Service{store: st, river: rc} }

// Submission is a job to run for a change, and what an approval request for it must record.
type Submission struct {
	ProjectID     int64
	EnvironmentID *int64
	Action        string // the policy action of the change, e.g. deployment.create
	TargetType    string // the domain row: TargetDeployment, …
	TargetID      int64
	Summary       string // one line for the approvers
	RequestedBy   int64
	// Required is the number of approvals needed; 0 inserts the job at once.
	Required int
	// TTL is how long the request stays open; 0 means until decided.
	TTL  time.Duration
	Args river.JobArgs
	Opts *river.InsertOpts
}

// Submitted tells what Submit did: either Request is set (the job is held) or JobID is.
type Submitted struct {
	Request *store.ApprovalRequest
	JobID   int64
}

// Submit inserts the job in tx when no approval is required, and otherwise stores an approval
// request holding it. A target that already has a pending request is ErrPendingExists.
func (s *Service) Submit(ctx context.Context, tx pgx.Tx, sub Submission) (*Submitted, error) {
	if sub.Required <= 0 {
		res, err := s.insert(ctx, tx, sub.Args, sub.Opts)
		if err != nil {
			return nil, err
		}
		return &Submitted{JobID: res}, nil
	}
	if sub.Required > policy.MaxApprovals {
		return nil, fmt.Errorf("required approvals %d exceed %d", sub.Required, policy.MaxApprovals)
	}
	kind, args, opts, err := encodeJob(sub.Args, sub.Opts)
	if err != nil {
		return nil, err
	}
	var expires *time.Time
	if sub.TTL > 0 {
		t := time.Now().Add(sub.TTL)
		expires = &t
	}
	req, err := s.store.CreateApprovalRequest(ctx, tx, store.NewApprovalRequest{
		ProjectID: sub.ProjectID, EnvironmentID: sub.EnvironmentID, Action: sub.Action,
		TargetType: sub.TargetType, TargetID: sub.TargetID, Summary: sub.Summary, RequestedBy: sub.RequestedBy,
		RequiredApprovals: sub.Required, JobKind: kind, JobArgs: args, JobOpts: opts, ExpiresAt: expires,
	})
	if c, ok := store.IsUniqueViolation(err); ok && c == "approval_requests_pending_target" {
		return nil, fmt.Errorf("%s %d: %w; approve or reject that one first", sub.TargetType, sub.TargetID, ErrPendingExists)
	}
	if err != nil {
		return nil, err
	}
	return &Submitted{Request: req}, nil
}

func (s *Service) insert(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (int64, error) {
	if s.river == nil {
		return 0, errors.New("approval service has no river client")
	}
	res, err := s.river.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return 0, fmt.Errorf("insert %s job: %w", args.Kind(), err)
	}
	return res.Job.ID, nil
}

// Voter is the person voting, as authenticated.
type Voter struct {
	UserID  int64
	TokenID int64 // 0 unless the vote came with an API token
}

// Outcome is the state of a request after a vote.
type Outcome struct {
	Before    store.ApprovalRequest
	After     store.ApprovalRequest
	Approvals int // approve votes that count, this one included
	// Released is true when this vote was the last approval needed and inserted the job.
	Released bool
	// Promoted are the resources whose proposals the release made live (store.PromoteProposals);
	// the caller enqueues the deletions among them that no job of their own carries.
	Promoted []store.Promoted
}

// Approve records v's approval of request id of project projectID. The request must be
// pending (ErrNotPending), v must not be its requester (ErrSelfApproval) and must not have
// voted on it before (ErrAlreadyVoted). Votes count while their voter is enabled and still
// holds the approve permission (an admin, or a project role of policy.ApproverRoles); when they
// reach the required number, the held job is inserted in tx and the request is approved.
func (s *Service) Approve(ctx context.Context, tx pgx.Tx, projectID, id int64, v Voter, reason string) (*Outcome, error) {
	req, err := s.lock(ctx, tx, projectID, id)
	if err != nil {
		return nil, err
	}
	if req.RequestedBy == v.UserID {
		return nil, fmt.Errorf("approval request %d: %w; it needs %d approvals from other people", id, ErrSelfApproval, req.RequiredApprovals)
	}
	if err := s.vote(ctx, tx, req.ID, v, store.VoteApprove, reason); err != nil {
		return nil, err
	}
	out := &Outcome{Before: *req, After: *req}
	out.Approvals, err = s.store.CountValidApprovals(ctx, tx, req.ID, policy.ApproverRoles())
	if err != nil || out.Approvals < req.RequiredApprovals {
		return out, err
	}
	o := jobOpts{}
	if err := json.Unmarshal(req.JobOpts, &o); err != nil {
		return nil, fmt.Errorf("approval request %d: stored insert options: %w", id, err)
	}
	jobID, err := s.insert(ctx, tx, heldArgs{kind: req.JobKind, args: req.JobArgs}, o.insertOpts())
	if err != nil {
		return nil, err
	}
	if out.Promoted, err = s.decide(ctx, tx, req, store.ApprovalApproved, &v.UserID, reason, &jobID); err != nil {
		return nil, err
	}
	out.Released = true
	out.After.State, out.After.JobID, out.After.DecidedBy = store.ApprovalApproved, &jobID, &v.UserID
	return out, nil
}

// Reject ends request id of project projectID: the held job is dropped and the target settled
// as rejected. Anyone who may approve may reject, the requester too (withdrawing a change is
// always safe), and so may someone who approved before and changed their mind.
func (s *Service) Reject(ctx context.Context, tx pgx.Tx, projectID, id int64, v Voter, reason string) (*Outcome, error) {
	req, err := s.lock(ctx, tx, projectID, id)
	if err != nil {
		return nil, err
	}
	if err := s.vote(ctx, tx, req.ID, v, store.VoteReject, reason); err != nil && !errors.Is(err, ErrAlreadyVoted) {
		return nil, err
	}
	if _, err := s.decide(ctx, tx, req, store.ApprovalRejected, &v.UserID, reason, nil); err != nil {
		return nil, err
	}
	out := &Outcome{Before: *req, After: *req}
	out.After.State, out.After.DecidedBy, out.After.Reason = store.ApprovalRejected, &v.UserID, reason
	return out, nil
}

// ExpireDue marks at most limit pending requests whose expiry has passed as expired, settles
// their targets, and returns them. Requests another transaction holds are skipped, so expiry
// jobs on several workers do not block each other or a voter.
func (s *Service) ExpireDue(ctx context.Context, tx pgx.Tx, limit int) ([]store.ApprovalRequest, error) {
	due, err := s.store.DueApprovalRequests(ctx, tx, limit)
	if err != nil {
		return nil, err
	}
	for i := range due {
		reason := fmt.Sprintf("expired at %s without enough approvals", due[i].ExpiresAt.UTC().Format(time.RFC3339))
		if _, err := s.decide(ctx, tx, &due[i], store.ApprovalExpired, nil, reason, nil); err != nil {
			return nil, err
		}
		due[i].State, due[i].Reason = store.ApprovalExpired, reason
	}
	return due, nil
}

// ApprovedBy returns the approve votes of the latest approved request of a target, in the
// order they were cast: the names for Approved-By commit trailers. A target that was never
// approved has none.
func (s *Service) ApprovedBy(ctx context.Context, db store.DBTX, targetType string, targetID int64) ([]store.Vote, error) {
	reqs, err := s.store.ListApprovalRequests(ctx, db, store.ApprovalFilter{
		TargetType: targetType, TargetID: targetID, State: store.ApprovalApproved, Limit: 1,
	})
	if err != nil || len(reqs) == 0 {
		return nil, err
	}
	return s.approvers(ctx, db, reqs[0].ID)
}

// ApprovedByJob returns the approve votes that released River job jobID, in the order they
// were cast; a job that ran without approval has none. A worker calls it with its own job ID.
func (s *Service) ApprovedByJob(ctx context.Context, db store.DBTX, jobID int64) ([]store.Vote, error) {
	req, err := s.store.ApprovalRequestByJob(ctx, db, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.approvers(ctx, db, req.ID)
}

func (s *Service) approvers(ctx context.Context, db store.DBTX, requestID int64) ([]store.Vote, error) {
	votes, err := s.store.ListVotes(ctx, db, []int64{requestID})
	if err != nil {
		return nil, err
	}
	out := votes[:0]
	for _, v := range votes {
		if v.Decision == store.VoteApprove {
			out = append(out, v)
		}
	}
	return out, nil
}

// lock locks a pending request of the project; another project's request is ErrNotFound.
func (s *Service) lock(ctx context.Context, tx pgx.Tx, projectID, id int64) (*store.ApprovalRequest, error) {
	req, err := s.store.LockApprovalRequest(ctx, tx, id)
	if err == nil && req.ProjectID != projectID {
		err = fmt.Errorf("approval request %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if req.State != store.ApprovalPending {
		return nil, fmt.Errorf("approval request %d is %s: %w", id, req.State, ErrNotPending)
	}
	return req, nil
}

func (s *Service) vote(ctx context.Context, tx pgx.Tx, requestID int64, v Voter, decision, reason string) error {
	var tokenID *int64
	if v.TokenID != 0 {
		tokenID = &v.TokenID
	}
	// A savepoint keeps the transaction usable after a duplicate vote, which Reject tolerates.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err = s.store.AddVote(ctx, sp, requestID, v.UserID, tokenID, decision, reason)
	if c, ok := store.IsUniqueViolation(err); ok && c == "approval_votes_pkey" {
		_ = sp.Rollback(ctx)
		return fmt.Errorf("approval request %d: %w", requestID, ErrAlreadyVoted)
	}
	if err != nil {
		_ = sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}

func (s *Service) decide(ctx context.Context, tx pgx.Tx, req *store.ApprovalRequest, state string, by *int64, reason string, jobID *int64) ([]store.Promoted, error) {
	ok, err := s.store.DecideApprovalRequest(ctx, tx, req.ID, state, by, reason, jobID)
	if err != nil {
		return nil, err
	}
	if !ok { // cannot happen under the row lock; refuse rather than release twice
		return nil, fmt.Errorf("approval request %d: %w", req.ID, ErrNotPending)
	}
	var promoted []store.Promoted
	if state == store.ApprovalApproved {
		promoted, err = s.store.PromoteProposals(ctx, tx, req.ID)
	} else {
		_, err = s.store.DiscardProposals(ctx, tx, req.ID)
	}
	if err != nil {
		return nil, err
	}
	return promoted, s.settle(ctx, tx, req, state)
}

// settle moves the target's domain row to follow its request. The resources whose changes the
// request holds as proposals were promoted or discarded by decide, whatever the target. A
// deployment waits in awaiting_approval; approved it becomes pending (its job now runs),
// rejected it is rejected, expired it is cancelled. An environment's held change lives only in
// the job, so nothing moves.
func (s *Service) settle(ctx context.Context, tx pgx.Tx, req *store.ApprovalRequest, state string) error {
	switch req.TargetType {
	case TargetDeployment:
		to := map[string]string{
			store.ApprovalApproved: store.DeployPending,
			store.ApprovalRejected: store.DeployRejected,
			store.ApprovalExpired:  store.DeployCancelled,
		}[state]
		_, err := s.store.MoveDeployment(ctx, tx, req.TargetID, store.DeployAwaitingApproval, to)
		return err
	}
	return nil
}
