package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func approvePath(id int64) string {
	return fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/approve", id)
}
func rejectPath(id int64) string {
	return fmt.Sprintf("/api/v1/projects/webapp/approvals/%d/reject", id)
}

func (f *fixture) deployment(t *testing.T, id int64) map[string]any {
	t.Helper()
	resp, got := f.b.get(t, fmt.Sprintf("/api/v1/projects/webapp/deployments/%d", id))
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	return got
}

func (f *fixture) approvalState(t *testing.T, id int64) map[string]any {
	t.Helper()
	resp, got := f.b.get(t, fmt.Sprintf("/api/v1/projects/webapp/approvals/%d", id))
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	return got
}

// TestTwoPersonRule walks a prod deploy through every way of getting it approved by fewer than
// two people other than the requester. Each is refused with a clear 401, 403 or 409 and leaves
// no job; the second valid approval releases exactly one.
func TestTwoPersonRule(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	require.Equal(t, "awaiting_approval", f.deployment(t, f.deploy)["status"])
	require.Zero(t, b.jobsOf(t, "manual_deploy"), "held, not enqueued")

	refuse := func(t *testing.T, token string, status int, contains string) {
		t.Helper()
		resp, got := b.do(t, token, http.MethodPost, approvePath(f.approval), nil)
		require.Equal(t, status, resp.StatusCode, got)
		require.Contains(t, got["error"], contains)
		require.Zero(t, b.jobsOf(t, "manual_deploy"), "a refused approval enqueues nothing")
	}
	t.Run("the requester approves their own change", func(t *testing.T) {
		refuse(t, f.tokens["requester"], http.StatusForbidden, "the requester of a change cannot approve it")
	})
	for _, role := range []string{"viewer", "developer", "nonmember"} {
		t.Run("a "+role+" approves", func(t *testing.T) {
			refuse(t, f.tokens[role], http.StatusForbidden, "permission denied: approval.approve")
		})
	}
	t.Run("the first approval counts but does not release", func(t *testing.T) {
		resp, got := b.do(t, f.tokens["maintainer"], http.MethodPost, approvePath(f.approval), map[string]string{"reason": "lgtm"})
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
		require.Equal(t, float64(1), got["approvals"])
		require.Equal(t, false, got["released"])
		require.Zero(t, b.jobsOf(t, "manual_deploy"))
	})
	t.Run("one person approves twice", func(t *testing.T) {
		refuse(t, f.tokens["maintainer"], http.StatusConflict, "you already voted")
	})
	t.Run("a disabled maintainer approves", func(t *testing.T) {
		_, dora := b.user(t, "dora", "maintainer")
		resp, got := b.do(t, b.admin, http.MethodPatch, "/api/v1/users/dora", map[string]bool{"disabled": true})
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
		refuse(t, dora, http.StatusUnauthorized, "user dora is disabled")
	})
	t.Run("the owner approves with a revoked token", func(t *testing.T) {
		tok := b.token(t, f.users["owner"].ID, nil)
		resp, got := b.do(t, tok, http.MethodGet, "/api/v1/tokens", nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
		id := got["items"].([]any)[0].(map[string]any)["id"]
		resp, got = b.do(t, tok, http.MethodDelete, fmt.Sprintf("/api/v1/tokens/%.0f", id), nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
		refuse(t, tok, http.StatusUnauthorized, "was revoked at")
	})
	t.Run("the owner approves with an expired token", func(t *testing.T) {
		soon := time.Now().Add(time.Hour)
		tok := b.token(t, f.users["owner"].ID, &soon)
		_, err := b.pool.Exec(context.Background(),
			`UPDATE api_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL`)
		require.NoError(t, err)
		refuse(t, tok, http.StatusUnauthorized, "expired at")
	})
	t.Run("a second distinct approver releases the job", func(t *testing.T) {
		resp, got := b.do(t, f.tokens["owner"], http.MethodPost, approvePath(f.approval), nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, got)
		require.Equal(t, true, got["released"])
		require.Equal(t, 1, b.jobsOf(t, "manual_deploy"))
		a := f.approvalState(t, f.approval)
		require.Equal(t, "approved", a["state"])
		require.NotNil(t, a["job_id"])
		votes := a["votes"].([]any)
		require.Len(t, votes, 2)
		require.Equal(t, "max", votes[0].(map[string]any)["username"], "Approved-By names are retrievable")
		require.Equal(t, "olga", votes[1].(map[string]any)["username"])
		d := f.deployment(t, f.deploy)
		require.Equal(t, "pending", d["status"], "approved: ready to run")
		require.Equal(t, "release", d["message"], "the requester's message stays")
	})
	t.Run("an approval after release", func(t *testing.T) {
		refuse2 := func(token string) {
			resp, got := b.do(t, token, http.MethodPost, approvePath(f.approval), nil)
			require.Equal(t, http.StatusConflict, resp.StatusCode, got)
			require.Contains(t, got["error"], "is approved")
		}
		refuse2(b.admin)
		require.Equal(t, 1, b.jobsOf(t, "manual_deploy"), "still exactly one job")
	})
}

func TestRejectEndsTheRequest(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	resp, got := b.do(t, f.tokens["maintainer"], http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)

	resp, got = b.do(t, f.tokens["owner"], http.MethodPost, rejectPath(f.approval), map[string]string{"reason": " "})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, got)
	require.Equal(t, "reason", got["field"])
	resp, got = b.do(t, f.tokens["developer"], http.MethodPost, rejectPath(f.approval), map[string]string{"reason": "no"})
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)

	resp, got = b.do(t, f.tokens["owner"], http.MethodPost, rejectPath(f.approval), map[string]string{"reason": "not during the freeze"})
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Equal(t, "rejected", f.deployment(t, f.deploy)["status"])
	a := f.approvalState(t, f.approval)
	require.Equal(t, "rejected", a["state"])
	require.Equal(t, "not during the freeze", a["reason"])

	for _, tok := range []string{b.admin, f.tokens["maintainer"]} {
		resp, got = b.do(t, tok, http.MethodPost, approvePath(f.approval), nil)
		require.Equal(t, http.StatusConflict, resp.StatusCode, got)
		require.Contains(t, got["error"], "is rejected")
	}
	resp, got = b.do(t, b.admin, http.MethodPost, rejectPath(f.approval), map[string]string{"reason": "again"})
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	require.Zero(t, b.jobsOf(t, "manual_deploy"))

	_, got = b.get(t, "/api/v1/projects/webapp/approvals")
	require.Empty(t, got["items"], "the default list shows pending requests")
	_, got = b.get(t, "/api/v1/projects/webapp/approvals?state=rejected")
	require.Len(t, got["items"], 1)
}

func TestExpiredRequestCannotBeApproved(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	resp, got := b.do(t, f.tokens["maintainer"], http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM approval_requests WHERE expires_at > now() + interval '71 hours'`),
		"prod requests expire after 72h by default")
	_, err := b.pool.Exec(context.Background(), `UPDATE approval_requests SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)

	resp, got = b.do(t, f.tokens["owner"], http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusConflict, resp.StatusCode, got)
	require.Contains(t, got["error"], "is expired")
	require.Equal(t, "expired", f.approvalState(t, f.approval)["state"])
	require.Zero(t, b.jobsOf(t, "manual_deploy"))
}

// TestVotesStopCountingWhenTheApproverLosesThePermission: a vote counts while its voter still
// may approve; a demoted approver's earlier vote does not complete the quorum.
func TestVotesStopCountingWhenTheApproverLosesThePermission(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	resp, got := b.do(t, f.tokens["maintainer"], http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	resp, got = b.do(t, f.tokens["owner"], http.MethodPut, "/api/v1/projects/webapp/members/max", map[string]string{"role": "developer"})
	require.Equal(t, http.StatusOK, resp.StatusCode, got)

	resp, got = b.do(t, f.tokens["owner"], http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Equal(t, float64(1), got["approvals"], "max's vote no longer counts")
	require.Equal(t, false, got["released"])
	require.Zero(t, b.jobsOf(t, "manual_deploy"))

	resp, got = b.do(t, b.admin, http.MethodPost, approvePath(f.approval), nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Equal(t, true, got["released"])
	require.Equal(t, 1, b.jobsOf(t, "manual_deploy"))
}

func TestAdminIsNotExemptFromTheTwoPersonRule(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	id, _ := f.holdDeploy(t, b.admin)
	resp, got := b.do(t, b.admin, http.MethodPost, approvePath(id), nil)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, got)
	require.Contains(t, got["error"], "requester")
}

// TestConcurrentApprovals races approvers on the same request, round after round: exactly one
// of them releases the job, and river_job gets exactly one job per request.
func TestConcurrentApprovals(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	const rounds = 8
	for round := range rounds {
		id, _ := f.holdDeploy(t, f.tokens["requester"])
		if round%2 == 1 { // half the rounds: one vote in, the last two race for the release
			resp, got := b.do(t, f.tokens["maintainer"], http.MethodPost, approvePath(id), nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, got)
		}
		racers := []string{f.tokens["owner"], b.admin}
		if round%2 == 0 {
			racers = append(racers, f.tokens["maintainer"])
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			released int
			statuses []int
			start    = make(chan struct{})
		)
		for _, tok := range racers {
			wg.Go(func() {
				<-start
				resp, got := b.do(t, tok, http.MethodPost, approvePath(id), nil)
				mu.Lock()
				defer mu.Unlock()
				statuses = append(statuses, resp.StatusCode)
				if got["released"] == true {
					released++
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, 1, released, "round %d: statuses %v", round, statuses)
		for _, s := range statuses {
			require.Contains(t, []int{http.StatusOK, http.StatusConflict}, s)
		}
		require.Equal(t, round+1, b.jobsOf(t, "manual_deploy"), "round %d", round)
	}
}
