package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestNotificationReadState: read marks are each reader's own; a notification the caller may
// not see is a 404 that marks nothing; bad input is a 400 naming the field; marking writes no
// audit row.
func TestNotificationReadState(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	alice, aliceTok := b.user(t, "amy", "maintainer")
	_, bobTok := b.user(t, "bo", "viewer")
	outsider, outsiderTok := b.user(t, "cy", "")
	other, err := b.st.CreateProject(ctx, b.pool, store.Project{Slug: "other", Name: "Other"})
	require.NoError(t, err)

	insert := func(n store.Notification) int64 {
		id, err := b.st.InsertNotification(ctx, b.pool, n)
		require.NoError(t, err)
		return id
	}
	pid := b.seed.Project.ID
	shared1 := insert(store.Notification{ProjectID: &pid, Severity: "error", Title: "deploy failed", TargetType: "deployment", TargetID: "1"})
	shared2 := insert(store.Notification{ProjectID: &pid, Severity: "info", Title: "deploy succeeded"})
	toAlice := insert(store.Notification{ProjectID: &pid, UserID: &alice.ID, Severity: "warning", Title: "approval waits on you"})
	otherID := insert(store.Notification{ProjectID: &other.ID, Severity: "error", Title: "someone else's"})
	_ = insert(store.Notification{UserID: &outsider.ID, Severity: "info", Title: "welcome"})

	list := func(tok, query string) map[string]any {
		t.Helper()
		resp, got := b.do(t, tok, http.MethodGet, "/api/v1/notifications"+query, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
		return got
	}
	titles := func(got map[string]any) []string {
		var out []string
		for _, it := range got["items"].([]any) {
			out = append(out, it.(map[string]any)["title"].(string))
		}
		return out
	}

	got := list(aliceTok, "")
	require.Equal(t, []string{"approval waits on you", "deploy succeeded", "deploy failed"}, titles(got))
	require.EqualValues(t, 3, got["unread"])
	require.Equal(t, "/projects/webapp/deployments/1", got["items"].([]any)[2].(map[string]any)["link"])
	got = list(bobTok, "")
	require.Equal(t, []string{"deploy succeeded", "deploy failed"}, titles(got), "bob sees neither alice's own nor another project's")
	require.Equal(t, []string{"welcome"}, titles(list(outsiderTok, "")))

	audits := b.count(t, "SELECT count(*) FROM audit_logs")

	t.Run("marks are the reader's own", func(t *testing.T) {
		resp, got := b.do(t, aliceTok, http.MethodPost, "/api/v1/notifications/read", map[string]any{"ids": []int64{shared1, toAlice}})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
		require.EqualValues(t, 2, got["marked"])
		require.EqualValues(t, 1, got["unread"])
		require.Equal(t, []string{"deploy succeeded"}, titles(list(aliceTok, "?unread=true")))
		require.EqualValues(t, 2, list(bobTok, "")["unread"], "alice's marks are not bob's")
		// Marking again counts nothing new.
		resp, got = b.do(t, aliceTok, http.MethodPost, "/api/v1/notifications/read", map[string]any{"ids": []int64{shared1}})
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.EqualValues(t, 0, got["marked"])
	})
	t.Run("an invisible notification is not found and nothing is marked", func(t *testing.T) {
		for _, id := range []int64{otherID, toAlice, 1 << 40} {
			resp, got := b.do(t, bobTok, http.MethodPost, "/api/v1/notifications/read", map[string]any{"ids": []int64{shared2, id}})
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "%v", got)
			require.Contains(t, fmt.Sprint(got["error"]), fmt.Sprint(id))
		}
		require.EqualValues(t, 2, list(bobTok, "")["unread"], "the visible one in the refused batch stays unread")
	})
	t.Run("bad input names the field", func(t *testing.T) {
		for _, c := range []struct {
			body  any
			field string
		}{
			{map[string]any{}, "ids"},
			{map[string]any{"ids": []int64{shared1}, "all": true}, "ids"},
			{map[string]any{"ids": []int64{shared1, -3}}, "ids[1]"},
			{map[string]any{"ids": "seven"}, "ids"},
		} {
			resp, got := b.do(t, bobTok, http.MethodPost, "/api/v1/notifications/read", c.body)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v → %v", c.body, got)
			require.Equal(t, c.field, got["field"], "%v → %v", c.body, got)
		}
		resp, got := b.do(t, bobTok, http.MethodGet, "/api/v1/notifications?unread=maybe", nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "unread", got["field"])
	})
	t.Run("all marks every visible one and a later one is unread again", func(t *testing.T) {
		resp, got := b.do(t, bobTok, http.MethodPost, "/api/v1/notifications/read", map[string]any{"all": true})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%v", got)
		require.EqualValues(t, 2, got["marked"])
		require.EqualValues(t, 0, got["unread"])
		insert(store.Notification{ProjectID: &pid, Severity: "error", Title: "later"})
		require.Equal(t, []string{"later"}, titles(list(bobTok, "?unread=true")))
	})
	t.Run("an anonymous caller is refused", func(t *testing.T) {
		resp, _ := b.do(t, "", http.MethodGet, "/api/v1/notifications", nil)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	require.Equal(t, audits, b.count(t, "SELECT count(*) FROM audit_logs"), "read marks are not audited")
}
