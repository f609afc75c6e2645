package console_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestNotificationsCenter: the header counts a user's unread notifications and follows new
// ones live; the center lists them with their read state (the user's alone), updates live, and
// Open marks one read on the way to what it is about; Mark all read clears the rest. Another
// person's notification and another project's never show.
func TestNotificationsCenter(t *testing.T) {
	b := setup(t, false)
	ctx, db := context.Background(), b.st.Pool()
	pid := b.seed.Project.ID
	bob, err := b.st.CreateUser(ctx, db, store.User{Username: "bob", DisplayName: "Bob"})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(ctx, db, pid, bob.ID, "developer"))
	other, err := b.st.CreateProject(ctx, db, store.Project{Slug: "other", Name: "Other"})
	require.NoError(t, err)
	notify := func(n store.Notification) int64 {
		t.Helper()
		id, err := b.st.InsertNotification(ctx, db, n)
		require.NoError(t, err)
		return id
	}
	rid := fmt.Sprint(b.seed.HelmRelease.ID)
	failed := notify(store.Notification{ProjectID: &pid, Severity: "error", Title: "HelmRelease webapp/podinfo failed",
		Body: "install retries exhausted", TargetType: "gitops_resource", TargetID: rid})
	notify(store.Notification{ProjectID: &pid, UserID: &bob.ID, Severity: "info", Title: "for bob only"})
	notify(store.Notification{ProjectID: &other.ID, Severity: "error", Title: "another project's"})

	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp"), chromedp.WaitVisible(chromedp.ID("notifications-link")))
	require.Equal(t, "1", br.Text("#unread-count"))
	notify(store.Notification{ProjectID: &pid, Severity: "warning", Title: "Kustomization webapp-production is slow"})
	br.WaitFor(`(document.querySelector("#unread-count")||{textContent:""}).textContent === "2"`, 10*time.Second)

	br.Run(chromedp.Navigate(b.srv.URL+"/notifications"), chromedp.WaitVisible(chromedp.ID("notifications")))
	body := br.Text("#notifications")
	require.Contains(t, body, "HelmRelease webapp/podinfo failed")
	require.NotContains(t, body, "for bob only")
	require.NotContains(t, body, "another project's")
	require.Equal(t, 2, browsertest.Eval[int](br, `document.querySelectorAll("#notifications tr.unread").length`))
	notify(store.Notification{ProjectID: &pid, Severity: "info", Title: "Kustomization webapp-production recovered"})
	br.WaitFor(`document.querySelectorAll("#notifications tr.unread").length === 3`, 10*time.Second)
	br.Page("notifications")

	br.Run(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#notification-%d form button`, failed))))
	br.WaitFor(`location.pathname === "/projects/webapp/resources/`+rid+`"`, 10*time.Second)
	br.Run(chromedp.Navigate(b.srv.URL+"/notifications"), chromedp.WaitVisible(chromedp.ID("notifications")))
	require.Equal(t, "read", browsertest.Eval[string](br, fmt.Sprintf(`document.querySelector("#notification-%d").className`, failed)))
	require.Equal(t, "2", br.Text("#unread-count"))

	br.Run(chromedp.Click(chromedp.CSS(`form[action="/notifications/read"] input[name="all"] ~ button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Marked 2 notifications read")`, 10*time.Second)
	require.Equal(t, 0, browsertest.Eval[int](br, `document.querySelectorAll("#notifications tr.unread, #unread-count").length`))
	br.NoJSErrors()

	// Read state is per person: bob still has all of his unread.
	n, err := b.st.UnreadNotifications(ctx, db, bob.ID, false)
	require.NoError(t, err)
	require.Equal(t, 4, n, "the three project-wide ones and his own")
}

// TestAuditedPagesUpdateLive: a change another person makes shows on the members, templates
// and environments pages and in the audit log without a reload, from its audit row.
func TestAuditedPagesUpdateLive(t *testing.T) {
	b := setup(t, false)
	ctx, db := context.Background(), b.st.Pool()
	pid := b.seed.Project.ID
	require.NoError(t, b.st.AddMember(ctx, db, pid, b.seed.User.ID, "owner"))
	dana, err := b.st.CreateUser(ctx, db, store.User{Username: "dana", DisplayName: "Dana"})
	require.NoError(t, err)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/members"), chromedp.WaitVisible(chromedp.ID("members")))
	br.WaitFor(`document.body.dataset.live === "open"`, 10*time.Second)
	require.NoError(t, b.st.WithTx(ctx, func(tx pgx.Tx) error {
		if err := b.st.AddMember(ctx, tx, pid, dana.ID, "developer"); err != nil {
			return err
		}
		_, err := b.st.InsertAudit(ctx, tx, store.AuditEntry{ActorType: store.ActorUser, ActorName: "olga", Action: "member.set",
			TargetType: "member", TargetID: "dana", ProjectID: &pid, Message: "dana is now developer"})
		return err
	}))
	br.WaitFor(`!!document.querySelector("#member-dana")`, 10*time.Second)

	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	br.WaitFor(`document.body.dataset.live === "open"`, 10*time.Second)
	_, err = b.st.InsertAudit(ctx, db, store.AuditEntry{ActorType: store.ActorUser, ActorName: "olga", Action: "template.delete",
		TargetType: "template", TargetID: "old", ProjectID: &pid, Message: "deleted template old"})
	require.NoError(t, err)
	br.WaitFor(`document.querySelector("#audit").textContent.includes("deleted template old")`, 10*time.Second)
	br.NoJSErrors()
}
