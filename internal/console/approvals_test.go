package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// member adds a user with role and a console password to the seeded project.
func (b *bundle) member(t *testing.T, name, role string) (*store.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := b.st.CreateUser(ctx, b.st.Pool(), store.User{Username: name, DisplayName: name})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(ctx, b.st.Pool(), b.seed.Project.ID, u.ID, role))
	pw := name + "-console-pw-1"
	setPassword(t, b.st, u.ID, pw)
	return u, pw
}

// requestDeploy fills the deploy form to production as the browser's user and returns the
// deployment page's path once it waits for approvals.
func requestDeploy(t *testing.T, br *browsertest.Browser, tag string) string {
	t.Helper()
	br.Run(chromedp.Navigate(br.Base+"/projects/webapp/environments/production/deploy"), chromedp.WaitVisible(chromedp.ID("app")))
	br.Run(
		chromedp.SendKeys(chromedp.ID("app"), "shop"+kb.Tab),
		chromedp.SendKeys(chromedp.ID("image"), "ghcr.io/acme/shop"),
		chromedp.SendKeys(chromedp.ID("tag"), tag+kb.Enter),
	)
	br.WaitFor(`!!document.querySelector("#deploy-button")`, 30*time.Second)
	br.Run(chromedp.Click(chromedp.ID("deploy-button")))
	br.WaitFor(`(document.querySelector("#progress-state")||{dataset:{}}).dataset.state === "awaiting_approval"`, 30*time.Second)
	return browsertest.Eval[string](br, `location.pathname`)
}

// openFromInbox opens the newest request of the browser's inbox and returns its path.
func openFromInbox(t *testing.T, br *browsertest.Browser, want int) string {
	t.Helper()
	br.Run(chromedp.Navigate(br.Base+"/approvals"), chromedp.WaitVisible(chromedp.ID("inbox")))
	require.Equal(t, fmt.Sprint(want), br.Text("#inbox-count"), "the header counts what waits")
	br.Run(chromedp.Click(chromedp.CSS("#inbox tbody a")), chromedp.WaitVisible(chromedp.ID("approval-state")))
	return browsertest.Eval[string](br, `location.pathname`)
}

// postStatus posts an empty form from the page, as a crafted request would, and returns the
// answer's status.
func postStatus(br *browsertest.Browser, path string) int {
	return browsertest.Eval[int](br, `(() => { const x = new XMLHttpRequest(); x.open("POST", `+"`"+path+"`"+`, false);
		x.setRequestHeader("Content-Type", "application/x-www-form-urlencoded"); x.send("reason=mine"); return x.status; })()`)
}

// TestTwoPersonApprovalInBrowsers: a developer asks for a production deploy; it waits. Two
// maintainers find it in their inboxes with what it changes and approve it there; the
// requester has no Approve button and the route refuses them; the requester's open page
// follows the deploy to Git without a reload. A second request is rejected with a reason,
// which the requester's page shows.
func TestTwoPersonApprovalInBrowsers(t *testing.T) {
	b := setup(t, true)
	_, err := b.st.Pool().Exec(context.Background(),
		`UPDATE environments SET gitops_config = '{"requiredApprovals": 2, "deployRoles": ["developer", "maintainer", "owner"]}' WHERE id = $1`, b.seed.Env.ID)
	require.NoError(t, err)
	_, davePW := b.member(t, "dave", "developer")
	_, miaPW := b.member(t, "mia", "maintainer")
	_, maxPW := b.member(t, "max", "maintainer")

	dave := browsertest.New(t, b.srv.URL)
	dave.SignIn("dave", davePW)
	depPath := requestDeploy(t, dave, "2.0.0")
	dave.Page("approval-requested")

	max := browsertest.New(t, b.srv.URL)
	max.SignIn("max", maxPW)
	mia := browsertest.New(t, b.srv.URL)
	mia.SignIn("mia", miaPW)
	apPath := openFromInbox(t, mia, 1)
	// max has the request open while mia votes: her vote shows there without a reload.
	max.Run(chromedp.Navigate(b.srv.URL+apPath), chromedp.WaitVisible(chromedp.ID("votes")))
	browsertest.Eval[int](max, `window.__marker = 5`)
	max.WaitFor(`document.body.dataset.live === "open"`, 20*time.Second)
	require.Contains(t, mia.Text("#approval h1"), "shop")
	require.Contains(t, mia.Text("#changes"), "2.0.0", "what it changes")
	require.Contains(t, mia.Text("#approval"), "dave")
	mia.Page("approval-detail")
	mia.Run(chromedp.Click(chromedp.ID("approve-button")), chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(t, mia.Text("#flash"), "1 of 2")
	require.Contains(t, mia.Text("#votes"), "mia approved")
	require.Contains(t, mia.Text("#no-approve"), "voted")
	max.WaitFor(`document.querySelector("#votes").textContent.includes("mia approved")`, 20*time.Second)
	require.Equal(t, 5, browsertest.Eval[int](max, `window.__marker`), "no reload")

	// The requester: no Approve button, and the route says why.
	dave.Run(chromedp.Navigate(b.srv.URL+apPath), chromedp.WaitVisible(chromedp.ID("approval-state")))
	require.False(t, browsertest.Eval[bool](dave, `!!document.querySelector("#approve-button")`))
	require.Contains(t, dave.Text("#no-approve"), "maintainer")
	require.Equal(t, 403, postStatus(dave, apPath+"/approve"))
	dave.Run(chromedp.Navigate(b.srv.URL+depPath), chromedp.WaitVisible(chromedp.ID("progress-state")))
	browsertest.Eval[int](dave, `window.__marker = 9`)
	dave.WaitFor(`document.body.dataset.live === "open"`, 20*time.Second)

	require.Equal(t, apPath, openFromInbox(t, max, 1))
	max.Run(chromedp.Click(chromedp.ID("approve-button")), chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(t, max.Text("#flash"), "last approval")
	require.Equal(t, "approved", browsertest.Eval[string](max, `document.querySelector("#approval-state").dataset.state`))
	max.Page("approval-approved")

	dave.WaitFor(`["pushed","applied","rolling_out","succeeded"].includes(document.querySelector("#progress-state").dataset.state)`, 60*time.Second)
	require.Equal(t, 9, browsertest.Eval[int](dave, `window.__marker`), "no reload")
	dave.Page("approval-pushed")

	// A second request, rejected with a reason.
	depPath = requestDeploy(t, dave, "2.1.0")
	browsertest.Eval[int](dave, `window.__marker = 10`)
	dave.WaitFor(`document.body.dataset.live === "open"`, 20*time.Second)
	apPath = openFromInbox(t, mia, 1)
	mia.Run(chromedp.Click(chromedp.ID("reject-button"))) // no reason: the browser asks for one
	require.True(t, browsertest.Eval[bool](mia, `!document.querySelector("#reject-reason").validity.valid`))
	mia.Run(chromedp.SendKeys(chromedp.ID("reject-reason"), "not during the release freeze"), chromedp.Click(chromedp.ID("reject-button")),
		chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(t, mia.Text("#flash"), "Rejected")
	require.Contains(t, mia.Text("#decision-reason"), "release freeze")
	dave.WaitFor(`document.querySelector("#progress-state").dataset.state === "rejected"`, 30*time.Second)
	require.Equal(t, 10, browsertest.Eval[int](dave, `window.__marker`), "no reload")
	require.True(t, strings.Contains(dave.Text("#progress"), "release freeze"), dave.Text("#progress"))
	dave.Page("approval-rejected")

	// The project's deployments: both, from the console; filtered; a new one appears live.
	mia.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/deployments"), chromedp.WaitVisible(chromedp.ID("deployments")))
	require.Equal(t, 2, browsertest.Eval[int](mia, `document.querySelectorAll("#deployments tbody tr").length`))
	require.Contains(t, mia.Text("#deployments"), "console")
	require.Contains(t, mia.Text("#deployments"), "Rejected")
	require.Contains(t, mia.Text("#deployments"), "dave")
	mia.Page("deployments")
	mia.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/deployments?status=rejected"), chromedp.WaitVisible(chromedp.ID("deployments")))
	require.Equal(t, 1, browsertest.Eval[int](mia, `document.querySelectorAll("#deployments tbody tr").length`))
	mia.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/deployments"), chromedp.WaitVisible(chromedp.ID("deployments")))
	browsertest.Eval[int](mia, `window.__marker = 11`)
	mia.WaitFor(`document.body.dataset.live === "open"`, 20*time.Second)
	requestDeploy(t, dave, "2.2.0")
	mia.WaitFor(`document.querySelectorAll("#deployments tbody tr").length === 3`, 30*time.Second)
	require.Equal(t, 11, browsertest.Eval[int](mia, `window.__marker`), "no reload")
	require.Contains(t, mia.Text("#deployments tbody tr"), "Awaiting approval")

	// Nothing waits on mia any more but the newest request.
	mia.Run(chromedp.Navigate(b.srv.URL+"/approvals"), chromedp.WaitVisible(chromedp.ID("inbox")))
	require.Equal(t, 1, browsertest.Eval[int](mia, `document.querySelectorAll("#inbox tbody tr").length`))
	require.Contains(t, mia.Text("#inbox"), "2.2.0")
	mia.Page("approvals-inbox")

	// It expires: it leaves the waiting list for the expired one.
	_, err = b.st.Pool().Exec(context.Background(), `UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE state = 'pending'`)
	require.NoError(t, err)
	mia.Run(chromedp.Navigate(b.srv.URL+"/approvals"), chromedp.WaitVisible(chromedp.ID("expired")))
	require.Contains(t, mia.Text("#inbox"), "Nothing waits on you")
	require.Contains(t, mia.Text("#expired"), "2.2.0")
	for _, br := range []*browsertest.Browser{dave, mia, max} {
		br.NoJSErrors()
	}
}
