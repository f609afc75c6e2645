package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxReasonLen bounds an approval's or rejection's reason.
const maxReasonLen = 2000

var approvalStates = []string{store.ApprovalPending, store.ApprovalApproved, store.ApprovalRejected, store.ApprovalExpired}

// approvalView is an approval request with its votes.
type approvalView struct {
	*store.ApprovalRequest
	Votes []store.Vote `json:"votes"`
}

// viewApprovals attaches the votes to each request, in one query.
func (h *Handler) viewApprovals(ctx context.Context, db store.DBTX, reqs []store.ApprovalRequest) ([]approvalView, error) {
	ids := make([]int64, len(reqs))
	out := make([]approvalView, len(reqs))
	byID := make(map[int64]*approvalView, len(reqs))
	for i := range reqs {
		ids[i] = reqs[i].ID
		out[i] = approvalView{ApprovalRequest: &reqs[i], Votes: []store.Vote{}}
		byID[reqs[i].ID] = &out[i]
	}
	votes, err := h.store.ListVotes(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	for _, v := range votes {
		byID[v.RequestID].Votes = append(byID[v.RequestID].Votes, v)
	}
	return out, nil
}

// listApprovals lists a project's approval requests, newest first: the pending ones unless
// ?state= asks for approved, rejected or expired ones.
func (h *Handler) listApprovals(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	f := store.ApprovalFilter{
		ProjectID: scopeOf(r).projectID(), EnvironmentID: p.int64("environment_id"),
		State: p.oneOf("state", approvalStates...), BeforeID: p.int64("before"), Limit: p.limit(),
	}
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	if f.State == "" {
		f.State = store.ApprovalPending
	}
	reqs, err := h.store.ListApprovalRequests(r.Context(), h.store.Pool(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.viewApprovals(r.Context(), h.store.Pool(), reqs)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, f.Limit, func(a approvalView) int64 { return a.ID }))
}

// approvalOf reads the {id} approval request of the scoped project; another project's is 404.
func (h *Handler) approvalOf(r *http.Request) (*approvalView, error) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		return nil, p.err
	}
	return h.approvalByID(r, id)
}

// approvalByID reads approval request id of the scoped project with its votes.
func (h *Handler) approvalByID(r *http.Request, id int64) (*approvalView, error) {
	req, err := h.store.ApprovalRequestByID(r.Context(), h.store.Pool(), id)
	if err == nil && req.ProjectID != scopeOf(r).projectID() {
		err = errNotFound("approval request %d: not found", id)
	}
	if err != nil {
		return nil, err
	}
	views, err := h.viewApprovals(r.Context(), h.store.Pool(), []store.ApprovalRequest{*req})
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}

func (h *Handler) getApproval(w http.ResponseWriter, r *http.Request) {
	v, err := h.approvalOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// voteReq is the body of approve and reject; a reason is required to reject.
type voteReq struct {
	Reason string `json:"reason"`
}

// Validate checks the reason's length, and that a rejection has one.
func (q *voteReq) Validate(reject bool) error {
	q.Reason = strings.TrimSpace(q.Reason)
	if reject && q.Reason == "" {
		return errBadRequest("reason", "say why the change is rejected")
	}
	if len(q.Reason) > maxReasonLen {
		return errBadRequest("reason", "must be at most %d characters", maxReasonLen)
	}
	return nil
}

// voteResp is the request after the vote.
type voteResp struct {
	Approval  *approvalView `json:"approval"`
	Approvals int           `json:"approvals"` // approve votes that count
	Released  bool          `json:"released"`  // this vote inserted the held job
}

// releaseProposals finishes what the last approval promoted: a proposed deletion that no held
// delete job of its own carries (an app's image automation a held deploy removes) is marked
// and its delete enqueued here, in the approval's transaction. It returns the promoted IDs.
func (h *Handler) releaseProposals(ctx context.Context, tx pgx.Tx, out *approval.Outcome) ([]int64, error) {
	ids := []int64{}
	for _, p := range out.Promoted {
		ids = append(ids, p.ID)
		if !p.Delete || out.Before.TargetType == approval.TargetResource && out.Before.TargetID == p.ID {
			continue
		}
		if _, err := h.store.MarkResourceDeleting(ctx, tx, p.ID); err != nil {
			return nil, err
		}
		if _, err := h.river.InsertTx(ctx, tx, jobs.DeleteResourceArgs{ResourceID: p.ID}, nil); err != nil {
			return nil, fmt.Errorf("enqueue delete of gitops resource %d: %w", p.ID, err)
		}
	}
	return ids, nil
}

func (h *Handler) approveApproval(w http.ResponseWriter, r *http.Request) { h.vote(w, r, false) }
func (h *Handler) rejectApproval(w http.ResponseWriter, r *http.Request)  { h.vote(w, r, true) }

// vote approves or rejects an approval request through Vote and answers with the request
// after the vote.
func (h *Handler) vote(w http.ResponseWriter, r *http.Request, reject bool) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	var q voteReq
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &q); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	out, err := h.Vote(r, id, reject, q.Reason)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// VoteResult is an approval request after a vote.
type VoteResult = voteResp

// Vote approves or rejects approval request id of the scoped project as the principal. The
// approval service refuses the requester's own approval (403), a second vote by one person and
// any vote on a request that is no longer pending, or has expired (409). The last approval
// needed inserts the held job in this transaction; a rejection ends the request and settles
// its target. A rejection needs a reason.
func (h *Handler) Vote(r *http.Request, id int64, reject bool, reason string) (*VoteResult, error) {
	q := voteReq{Reason: reason}
	if err := q.Validate(reject); err != nil {
		return nil, err
	}
	sc := scopeOf(r)
	voter := approval.Voter{UserID: sc.Principal.UserID, TokenID: sc.Principal.TokenID}
	var out *approval.Outcome
	if err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var err error
		if reject {
			out, err = h.approvals.Reject(ctx, tx, sc.projectID(), id, voter, q.Reason)
		} else {
			out, err = h.approvals.Approve(ctx, tx, sc.projectID(), id, voter, q.Reason)
		}
		if err != nil {
			return nil, err
		}
		promoted, err := h.releaseProposals(ctx, tx, out)
		if err != nil {
			return nil, err
		}
		var cluster string
		if id := out.Before.EnvironmentID; id != nil {
			env, err := h.store.EnvironmentByID(ctx, tx, *id)
			if err != nil {
				return nil, err
			}
			cluster = env.Cluster
		}
		state := func(a store.ApprovalRequest) map[string]any {
			return map[string]any{"state": a.State, "job_id": a.JobID}
		}
		ch := &auditChange{TargetType: "approval_request", TargetID: id, Before: state(out.Before), After: state(out.After),
			EnvironmentID: out.Before.EnvironmentID, Cluster: cluster,
			Details: map[string]any{"target_type": out.Before.TargetType, "target_id": out.Before.TargetID,
				"held_action": out.Before.Action, "reason": q.Reason, "approvals": out.Approvals,
				"required_approvals": out.Before.RequiredApprovals, "released": out.Released, "promoted_resource_ids": promoted},
			Message: sc.Principal.Username + " voted on: " + out.Before.Summary}
		return ch, nil
	}); err != nil {
		return nil, err
	}
	v, err := h.approvalByID(r, id)
	if err != nil {
		return nil, err
	}
	return &voteResp{Approval: v, Approvals: out.Approvals, Released: out.Released}, nil
}
