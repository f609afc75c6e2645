package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
	"github.com/fluxbridge/fluxbridge/internal/gittest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

func TestSignInAndOut(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)

	// A page before signing in goes to the sign-in form and comes back after.
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp"), chromedp.WaitVisible(chromedp.ID("username")))
	loc := browsertest.Eval[string](br, `location.pathname + location.search`)
	require.Equal(t, "/signin?next=%2Fprojects%2Fwebapp", loc)
	br.Page("signin")

	br.Run(chromedp.SendKeys(chromedp.ID("username"), "alice"), chromedp.SendKeys(chromedp.ID("password"), "wrong password"+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("signin-error")))
	require.Contains(t, br.Text("#signin-error"), "Wrong username or password")
	br.Page("signin-wrong-password")

	br.Run(chromedp.SendKeys(chromedp.ID("password"), alicePassword+kb.Enter), chromedp.WaitVisible(chromedp.CSS(".cluster")))
	loc = browsertest.Eval[string](br, `location.pathname`)
	require.Equal(t, "/projects/webapp", loc, "back where the browser was going")

	br.Run(chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(".tiles")))
	require.Contains(t, br.Text(".tiles"), "Web app")
	br.Page("projects")

	br.Run(chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)), chromedp.WaitVisible(chromedp.ID("username")))
	br.Run(chromedp.Navigate(b.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("username")))
	br.NoJSErrors()
}

// client is a cookie-keeping HTTP client signed in as user, for the checks a browser would not
// let us make (a forged cross-site request).
func signedInClient(t testing.TB, base, user, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/signin", url.Values{"username": {user}, "password": {password}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	return c
}

func TestCrossSiteFormIsRefused(t *testing.T) {
	b := setup(t, false)
	c := signedInClient(t, b.srv.URL, "alice", alicePassword)
	path := fmt.Sprintf("%s/projects/webapp/resources/%d/suspend", b.srv.URL, b.seed.Kustomization.ID)
	req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "cross-origin request refused")
	res, err := b.st.ResourceByID(context.Background(), b.st.Pool(), b.seed.Kustomization.ID)
	require.NoError(t, err)
	require.False(t, res.Suspended, "the forged request changed nothing")

	// The same request from our own pages goes through.
	req, _ = http.NewRequest(http.MethodPost, path, strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

func TestSessionCookieAndHeaders(t *testing.T) {
	b := setup(t, false)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(b.srv.URL+"/signin", url.Values{"username": {"alice"}, "password": {alicePassword}})
	require.NoError(t, err)
	resp.Body.Close()
	var found bool
	for _, h := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(h, "fluxbridge_session=") {
			found = true
			require.Contains(t, h, "HttpOnly")
			require.Contains(t, h, "SameSite=Lax")
		}
	}
	require.True(t, found, "a session cookie was set")
	page, err := http.Get(b.srv.URL + "/signin")
	require.NoError(t, err)
	page.Body.Close()
	csp := page.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
}

func TestResourcePageActionsLive(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	id := b.seed.Kustomization.ID
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp"), chromedp.WaitVisible(chromedp.CSS(".cluster")))
	br.Page("overview")
	br.Run(chromedp.Navigate(fmt.Sprintf("%s/projects/webapp/resources/%d", b.srv.URL, id)), chromedp.WaitVisible(chromedp.ID("res-head")))
	br.Page("resource")

	// A phone: the pages fit its width (wide tables scroll inside their card).
	br.Run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	for _, pg := range []struct{ name, path, sel string }{
		{"overview-phone", "/projects/webapp", ".cluster"},
		{"resource-phone", fmt.Sprintf("/projects/webapp/resources/%d", id), "#res-head"},
		{"deploy-phone", "/projects/webapp/environments/production/deploy", "#app"},
	} {
		br.Run(chromedp.Navigate(b.srv.URL+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		require.LessOrEqual(t, browsertest.Eval[int](br, `Math.max(document.documentElement.scrollWidth, ...Array.from(document.querySelectorAll("header, header *")).map(e => Math.ceil(e.getBoundingClientRect().right)))`),
			browsertest.Eval[int](br, `window.innerWidth`), "%s fits a phone's width, its header too", pg.path)
		br.Page(pg.name)
	}
	br.Run(chromedp.EmulateViewport(1280, 900))
	br.Run(chromedp.Navigate(fmt.Sprintf("%s/projects/webapp/resources/%d", b.srv.URL, id)), chromedp.WaitVisible(chromedp.ID("res-head")))

	br.Run(chromedp.Click(chromedp.CSS(`form[action$="/suspend"] button`)), chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(t, br.Text("#flash"), "Suspended")
	require.Contains(t, br.Text("#res-head h1"), "Suspended")
	br.Run(chromedp.Click(chromedp.CSS(`form[action$="/resume"] button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Resumed")`, 20*time.Second)

	br.Run(chromedp.Click(chromedp.CSS(`form[action$="/reconcile"]:not(:has(input)) button`)))
	br.WaitFor(`!!document.querySelector("#reconcile-progress")`, 20*time.Second)
	require.Contains(t, br.Text("#reconcile-progress"), "pending")
	// The worker (its stand-in here: the row it would write) finishes the request; the header
	// follows without a reload.
	browsertest.Eval[int](br, `window.__marker = 42`)
	br.WaitFor(`document.body.dataset.live === "open"`, 20*time.Second)
	_, err := b.st.Pool().Exec(context.Background(),
		`UPDATE reconcile_requests SET status = 'succeeded', message = 'applied revision main@sha1:0123', updated_at = now(), finished_at = now() WHERE resource_id = $1`, id)
	require.NoError(t, err)
	br.WaitFor(`(document.querySelector("#reconcile-progress")||{}).textContent.includes("succeeded")`, 20*time.Second)
	require.Equal(t, 42, browsertest.Eval[int](br, `window.__marker`), "no reload")
	br.Page("resource-reconciled")

	// A status the watch writes reaches the open page.
	_, err = b.st.Pool().Exec(context.Background(),
		`UPDATE gitops_resources SET status = 'failed', status_reason = 'BuildFailed', status_message = 'kustomize build failed: accumulating resources: missing file apps/shop/kustomization.yaml' WHERE id = $1`, id)
	require.NoError(t, err)
	br.WaitFor(`document.querySelector("#res-head h1").textContent.includes("Failed")`, 20*time.Second)
	require.Contains(t, br.Text("#res-head .hint"), "kustomize build")
	br.NoJSErrors()
}

func TestViewerSeesNoDeploy(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("victor", victorPassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp"), chromedp.WaitVisible(chromedp.CSS(".cluster")))
	links := browsertest.Eval[int](br, `document.querySelectorAll('a.button.primary[href$="/deploy"]').length`)
	require.Zero(t, links, "no deploy button for a viewer")
	require.Contains(t, browsertest.Eval[string](br, `document.querySelector(".button.disabled").title`), "viewer")
	br.Page("overview-viewer")

	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments/production/deploy"), chromedp.WaitVisible(chromedp.CSS(".error-page")))
	txt := br.Text(".error-page")
	require.Contains(t, txt, "Not allowed")
	require.Contains(t, txt, "deployment.create")
	require.Contains(t, txt, "viewer")
	br.Page("forbidden")
	br.NoJSErrors()

	c := signedInClient(t, b.srv.URL, "victor", victorPassword)
	resp, err := c.Get(b.srv.URL + "/projects/webapp/environments/production/deploy")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// TestAuditLog: the project's audit log shows who did what with the change as fields, filters
// by action, exports CSV, and never shows a credential.
func TestAuditLog(t *testing.T) {
	b := setup(t, true) // connecting the repository wrote its credentials to the secret store
	status, _ := b.api(t, http.MethodPost, fmt.Sprintf("/projects/webapp/resources/%d/suspend", b.seed.Kustomization.ID), nil)
	require.Equal(t, http.StatusAccepted, status)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	txt := br.Text("#audit")
	require.Contains(t, txt, "resource.suspend")
	require.Contains(t, txt, "repository.create")
	require.Contains(t, txt, "alice")
	html := browsertest.Eval[string](br, `document.documentElement.outerHTML`)
	require.NotContains(t, html, gitPass, "no credential on the page")

	br.Run(chromedp.SendKeys(chromedp.ID("f-action"), "resource.suspend"+kb.Enter), chromedp.WaitVisible(chromedp.ID("audit")))
	br.WaitFor(`location.search.includes("action=resource.suspend")`, 10*time.Second)
	require.Equal(t, 1, browsertest.Eval[int](br, `document.querySelectorAll("#audit > table > tbody > tr").length`))
	br.Run(chromedp.Click(chromedp.CSS("#audit details summary")))
	require.Contains(t, br.Text("#audit details"), "suspend")
	br.Page("audit")

	get := func(url string) string {
		return browsertest.Eval[string](br, `(() => { const x = new XMLHttpRequest(); x.open("GET", `+url+`, false); x.send(); return x.status + "\n" + x.getResponseHeader("Content-Type") + "\n" + x.responseText; })()`)
	}
	csvText := get(`document.querySelector("#export").href`)
	lines := strings.Split(strings.TrimSpace(csvText), "\n")
	require.Equal(t, "200", lines[0])
	require.Contains(t, lines[1], "text/csv")
	require.Equal(t, "id,at,actor_type,actor,action,target_type,target_id,environment,cluster,message,request_id,source_ip,details", lines[2])
	require.Len(t, lines, 4, "the header and the one filtered row")
	require.Contains(t, lines[3], "resource.suspend")

	all := get(`"/projects/webapp/audit.csv"`)
	require.Contains(t, all, "repository.create")
	require.NotContains(t, all, gitPass, "no credential in the export")

	// The same person through the console: the same name, their session as the method.
	br.Run(chromedp.Navigate(fmt.Sprintf("%s/projects/webapp/resources/%d", b.srv.URL, b.seed.Kustomization.ID)), chromedp.WaitVisible(chromedp.ID("res-head")),
		chromedp.Click(chromedp.CSS(`form[action$="/resume"] button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Resumed")`, 15*time.Second)
	rows := strings.Split(strings.TrimSpace(get(`"/projects/webapp/audit.csv?action=resource.resume"`)), "\n")
	require.Len(t, rows, 4)
	require.Contains(t, rows[3], ",user,alice,resource.resume,")
	require.Contains(t, rows[3], `""auth_method"": ""session""`)
	require.Contains(t, lines[3], ",token,alice,resource.suspend,")
	br.NoJSErrors()
}

// TestEnvironmentSettings: an owner changes production's settings from its page; once two
// approvals are required, a change of them waits for approval (the page links the request,
// whose page shows the change field by field) and the settings stay; a viewer has no form and
// the route refuses them.
func TestEnvironmentSettings(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments"), chromedp.WaitVisible(chromedp.ID("env-production")))
	require.Contains(t, br.Text("#env-production"), "none", "no approvals yet")
	br.Run(chromedp.Click(chromedp.CSS("#env-production summary")))
	browsertest.Eval[string](br, `document.querySelector("#production-approvals").value = ""`)
	require.Contains(t, br.Text("#production-auto-rollback"), "left for a person")
	br.Run(chromedp.SendKeys(chromedp.ID("production-approvals"), "2"), chromedp.Click(chromedp.ID("production-autorollback")),
		chromedp.Click(chromedp.ID("production-save")), chromedp.WaitVisible(chromedp.ID("flash")))
	require.Contains(t, br.Text("#flash"), "Saved")
	require.Contains(t, br.Text("#env-production"), "2 from people other than the requester")
	require.Contains(t, br.Text("#production-auto-rollback"), "rolled back automatically to the app's previous successful deployment, once approved")

	br.Run(chromedp.Click(chromedp.CSS("#env-production summary")))
	browsertest.Eval[string](br, `document.querySelector("#production-approvals").value = ""`)
	br.Run(chromedp.SendKeys(chromedp.ID("production-approvals"), "0"), chromedp.Click(chromedp.ID("production-save")))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("waits for 2 approvals")`, 15*time.Second)
	require.Contains(t, br.Text("#env-production"), "2 from people other than the requester", "unchanged until approved")
	br.Page("environments")
	br.Run(chromedp.Click(chromedp.CSS("#pending-production a")), chromedp.WaitVisible(chromedp.ID("changes")))
	require.Contains(t, br.Text("#changes"), "requiredApprovals")
	require.Contains(t, br.Text("#no-approve"), "cannot approve")

	viewer := browsertest.New(t, b.srv.URL)
	viewer.SignIn("victor", victorPassword)
	viewer.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments"), chromedp.WaitVisible(chromedp.ID("env-production")))
	require.False(t, browsertest.Eval[bool](viewer, `!!document.querySelector("#env-production form")`))
	require.Equal(t, 403, postStatus(viewer, "/projects/webapp/environments/production/settings"))
	br.NoJSErrors()
	viewer.NoJSErrors()
}

// TestRepositoriesPage: the fleet repository validates; a repository connected with a wrong
// password shows the validate check's message, and valid again once its credentials are
// rotated; no password ever appears in the page.
func TestRepositoriesPage(t *testing.T) {
	b := setup(t, true)
	_, fleet := b.api(t, http.MethodGet, "/projects/webapp/repositories", nil)
	url := fleet["items"].([]any)[0].(map[string]any)["url"].(string)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/repositories"), chromedp.WaitVisible(chromedp.ID("repo-fleet")))
	br.Run(chromedp.Click(chromedp.ID("validate-fleet")), chromedp.WaitVisible(chromedp.CSS("#repo-fleet .validation")))
	require.Contains(t, br.Text("#repo-fleet .validation"), "Valid")

	setValue := func(id, v string) {
		raw, _ := json.Marshal(v)
		browsertest.Eval[string](br, `document.getElementById("`+id+`").value = `+string(raw))
	}
	setValue("c-ca", string(b.gitCA))
	br.Run(
		chromedp.SendKeys(chromedp.ID("c-name"), "mirror"),
		chromedp.SendKeys(chromedp.ID("c-url"), url),
		chromedp.SendKeys(chromedp.ID("c-user"), gitUser),
		chromedp.SendKeys(chromedp.ID("c-password"), "wrong-password-1"),
		chromedp.Click(chromedp.ID("connect-button")),
		chromedp.WaitVisible(chromedp.ID("repo-mirror")),
	)
	require.Contains(t, br.Text("#flash"), "Connected")
	br.Run(chromedp.Click(chromedp.ID("validate-mirror")), chromedp.WaitVisible(chromedp.CSS("#repo-mirror .validation")))
	v := br.Text("#repo-mirror .validation")
	require.Contains(t, v, "Not valid")
	require.Contains(t, strings.ToLower(v), "authentication", "the check says the credentials were refused")
	br.Page("repositories-invalid")

	br.Run(chromedp.Click(chromedp.CSS("#repo-mirror summary")))
	id := browsertest.Eval[string](br, `document.querySelector("#repo-mirror form[action$='/credentials']").action.split("/").slice(-2)[0]`)
	setValue("r"+id+"-ca", string(b.gitCA))
	br.Run(
		chromedp.SendKeys(chromedp.ID("r"+id+"-user"), gitUser),
		chromedp.SendKeys(chromedp.ID("r"+id+"-password"), gitPass),
		chromedp.Click(chromedp.ID("rotate-mirror")),
	)
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Rotated")`, 15*time.Second)
	br.Run(chromedp.Click(chromedp.ID("validate-mirror")), chromedp.WaitVisible(chromedp.CSS("#repo-mirror .validation")))
	require.Contains(t, br.Text("#repo-mirror .validation"), "Valid")
	html := browsertest.Eval[string](br, `document.documentElement.outerHTML`)
	require.NotContains(t, html, gitPass)
	require.NotContains(t, html, "wrong-password-1")
	br.NoJSErrors()
}

// TestRepositoriesPageSSH: a repository connected over SSH with a key and known_hosts
// validates; known_hosts that does not hold the server's key shows the check's message, and
// rotating to the right one makes it valid. The key never appears in the HTML.
func TestRepositoriesPageSSH(t *testing.T) {
	b := setup(t, true)
	url, creds, gs := startSSHGitServer(t)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/repositories"), chromedp.WaitVisible(chromedp.ID("connect")))
	setValue := func(id, v string) {
		raw, _ := json.Marshal(v)
		browsertest.Eval[string](br, `document.getElementById("`+id+`").value = `+string(raw))
	}
	setValue("c-auth", "ssh")
	setValue("c-key", string(creds["identity"]))
	setValue("c-known", string(gittest.StrangerKnownHosts(t, gs)))
	br.Run(
		chromedp.SendKeys(chromedp.ID("c-name"), "sshfleet"),
		chromedp.SendKeys(chromedp.ID("c-url"), url),
		chromedp.Click(chromedp.ID("connect-button")),
		chromedp.WaitVisible(chromedp.ID("repo-sshfleet")),
	)
	require.Contains(t, br.Text("#flash"), "Connected")
	require.Contains(t, br.Text("#repo-sshfleet .tag"), "ssh")
	br.Run(chromedp.Click(chromedp.ID("validate-sshfleet")), chromedp.WaitVisible(chromedp.CSS("#repo-sshfleet .validation")))
	v := br.Text("#repo-sshfleet .validation")
	require.Contains(t, v, "Not valid")
	require.Contains(t, v, "known_hosts", "the check says the host key is not the one pinned")

	br.Run(chromedp.Click(chromedp.CSS("#repo-sshfleet summary")))
	id := browsertest.Eval[string](br, `document.querySelector("#repo-sshfleet form[action$='/credentials']").action.split("/").slice(-2)[0]`)
	setValue("r"+id+"-auth", "ssh")
	setValue("r"+id+"-key", string(creds["identity"]))
	setValue("r"+id+"-known", string(creds["known_hosts"]))
	br.Run(chromedp.Click(chromedp.ID("rotate-sshfleet")))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Rotated")`, 15*time.Second)
	br.Run(chromedp.Click(chromedp.ID("validate-sshfleet")), chromedp.WaitVisible(chromedp.CSS("#repo-sshfleet .validation")))
	require.Contains(t, br.Text("#repo-sshfleet .validation"), "Valid: deploys can push")
	br.Page("repositories-ssh")
	html := browsertest.Eval[string](br, `document.documentElement.outerHTML`)
	require.NotContains(t, html, "PRIVATE KEY")
	key := strings.Split(strings.TrimSpace(string(creds["identity"])), "\n")
	require.NotContains(t, html, key[len(key)/2], "no line of the key is on the page")
	var rows int
	require.NoError(t, b.st.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM repositories WHERE row_to_json(repositories)::text LIKE '%PRIVATE KEY%'`).Scan(&rows))
	require.Zero(t, rows, "the key is in the secret store, not the row")
	br.NoJSErrors()
}

// TestViewerReadsEveryPage: a viewer opens every project page read-only — no form but sign-out
// — and each action route answers them 403 naming the action and the role it needs.
func TestViewerReadsEveryPage(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("victor", victorPassword)
	for _, pg := range []struct{ path, sel string }{
		{"/projects/webapp", ".cluster"},
		{fmt.Sprintf("/projects/webapp/resources/%d", b.seed.Kustomization.ID), "#res-head"},
		{"/projects/webapp/environments", "#env-production"},
		{"/projects/webapp/repositories", "#repos"},
		{"/projects/webapp/deployments", "#deployments"},
		{"/projects/webapp/templates", "#template-microservice"},
		{"/projects/webapp/audit", "#audit"},
		{"/projects/webapp/events", "#events"},
		{"/projects/webapp/members", "#members"},
		{"/approvals", "#inbox"},
	} {
		br.Run(chromedp.Navigate(b.srv.URL+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		forms := browsertest.Eval[[]string](br, `Array.from(document.querySelectorAll("form[method=post]")).map(f => new URL(f.action).pathname).filter(p => p !== "/signout")`)
		require.Empty(t, forms, "%s: a viewer gets no action forms", pg.path)
		br.CheckHTML()
	}
	br.Page("repositories-viewer")
	for _, action := range []struct{ path, action string }{
		{fmt.Sprintf("/projects/webapp/resources/%d/suspend", b.seed.Kustomization.ID), "resource.suspend"},
		{"/projects/webapp/environments/production/settings", "environment.update"},
		{"/projects/webapp/repositories", "repository.create"},
		{fmt.Sprintf("/projects/webapp/repositories/%d/validate", b.seed.Repo.ID), "repository.validate"},
		{fmt.Sprintf("/projects/webapp/repositories/%d/credentials", b.seed.Repo.ID), "repository.rotate_credentials"},
		{"/projects/webapp/templates/web-app/delete", "template.delete"},
		{"/projects/webapp/environments/production/deploy/template", "template.create"},
		{"/projects/webapp/approvals/1/approve", "approval.approve"},
		{"/projects/webapp/members/victor/remove", "member.remove"},
	} {
		require.Equal(t, 403, postStatus(br, action.path), action.path)
		body := browsertest.Eval[string](br, `(() => { const x = new XMLHttpRequest(); x.open("POST", "`+action.path+`", false); x.send(""); return x.responseText; })()`)
		require.Contains(t, body, action.action, action.path)
		require.Contains(t, body, "viewer", action.path)
	}
	br.NoJSErrors()
}

// TestTokensPage: a person creates an API token in the console, sees it once, uses it on the
// API, finds only its prefix afterwards, and revokes it.
func TestTokensPage(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("victor", victorPassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/tokens"), chromedp.WaitVisible(chromedp.ID("new-token")))
	br.Run(chromedp.SendKeys(chromedp.ID("t-name"), "ci deploy"), chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.ID("created-token")))
	tok := browsertest.Eval[string](br, `document.querySelector("#token-value").value`)
	require.NotEmpty(t, tok)
	br.Page("tokens-created")
	me := func() int {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, me())

	br.Run(chromedp.Navigate(b.srv.URL+"/tokens"), chromedp.WaitVisible(chromedp.ID("tokens")))
	require.NotContains(t, browsertest.Eval[string](br, `document.documentElement.outerHTML`), tok, "shown once only")
	require.Contains(t, br.Text("#tokens"), "ci deploy")
	br.Run(chromedp.Click(chromedp.CSS(`#tokens form button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Revoked")`, 15*time.Second)
	require.Contains(t, br.Text("#tokens"), "Revoked")
	require.Equal(t, http.StatusUnauthorized, me())
	br.NoJSErrors()
}

// TestAdminUsers: an admin creates a user and gives them a one-time password link, with which
// they set a password and sign in; disabled, they are signed out; a non-admin gets 403.
func TestAdminUsers(t *testing.T) {
	b := setup(t, false)
	ctx := context.Background()
	admin, err := b.st.CreateUser(ctx, b.st.Pool(), store.User{Username: "root", DisplayName: "Root", IsAdmin: true})
	require.NoError(t, err)
	setPassword(t, b.st, admin.ID, "root-console-pw-1")
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("root", "root-console-pw-1")
	br.Run(chromedp.Navigate(b.srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("new-user")))
	br.Run(chromedp.SendKeys(chromedp.ID("u-name"), "Nora"), chromedp.Click(chromedp.ID("create-user")), chromedp.WaitVisible(chromedp.ID("user-error")))
	require.Contains(t, br.Text("#user-error"), "username")
	browsertest.Eval[string](br, `document.querySelector("#u-name").value = ""`)
	br.Run(chromedp.SendKeys(chromedp.ID("u-name"), "nora"), chromedp.Click(chromedp.ID("create-user")), chromedp.WaitVisible(chromedp.ID("user-nora")))
	br.Run(chromedp.Click(chromedp.CSS(`#user-nora form[action$="/password-link"] button`)), chromedp.WaitVisible(chromedp.ID("password-link")))
	link := browsertest.Eval[string](br, `document.querySelector("#link-value").value`)
	require.Contains(t, link, "/password/")
	br.Page("users")

	nora := browsertest.New(t, b.srv.URL)
	nora.Run(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), "nora-console-pw-1"), chromedp.SendKeys(chromedp.ID("confirm"), "nora-console-pw-1"+kb.Enter))
	nora.WaitFor(`!location.pathname.startsWith("/password/") && document.readyState === "complete"`, 15*time.Second)
	nora.SignIn("nora", "nora-console-pw-1")
	require.Contains(t, nora.Text(".who"), "nora")

	// The admin issues nora a token from her row: shown once, it acts as nora; then revokes it.
	br.Run(chromedp.Navigate(b.srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("user-nora")))
	br.Run(chromedp.Click(chromedp.CSS(`#user-nora a[href$="/tokens"]`)), chromedp.WaitVisible(chromedp.ID("new-token")))
	require.Contains(t, br.Text("h1"), "API tokens of nora")
	br.Run(chromedp.SendKeys(chromedp.ID("t-name"), "nora ci"), chromedp.Click(chromedp.ID("create-token")), chromedp.WaitVisible(chromedp.ID("created-token")))
	tok := browsertest.Eval[string](br, `document.querySelector("#token-value").value`)
	br.CheckHTML()
	br.Page("user-tokens")
	me := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct {
			User struct {
				Username string `json:"username"`
			} `json:"user"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.User.Username
	}
	status, who := me()
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "nora", who)
	br.Run(chromedp.Navigate(b.srv.URL+"/admin/users/nora/tokens"), chromedp.WaitVisible(chromedp.ID("tokens")))
	require.NotContains(t, browsertest.Eval[string](br, `document.documentElement.outerHTML`), tok, "shown once only")
	br.Run(chromedp.Click(chromedp.CSS(`#tokens form button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Revoked")`, 15*time.Second)
	require.Equal(t, "/admin/users/nora/tokens", browsertest.Eval[string](br, `location.pathname`))
	status, _ = me()
	require.Equal(t, http.StatusUnauthorized, status)
	var audited string
	require.NoError(t, b.st.Pool().QueryRow(ctx, `SELECT string_agg(actor_name || ': ' || message, '; ' ORDER BY id) FROM audit_logs WHERE target_type = 'api_token'`).Scan(&audited))
	require.Equal(t, "root: created API token nora ci for nora; root: revoked API token nora ci of nora", audited)

	br.Run(chromedp.Navigate(b.srv.URL+"/admin/users"), chromedp.WaitVisible(chromedp.ID("user-nora")))
	br.Run(chromedp.Click(chromedp.CSS(`#user-nora form[action$="/disable"] button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Disabled nora")`, 15*time.Second)
	require.Contains(t, br.Text("#user-nora"), "Disabled")
	nora.Run(chromedp.Navigate(b.srv.URL + "/"))
	nora.WaitFor(`location.pathname === "/signin"`, 10*time.Second)

	viewer := browsertest.New(t, b.srv.URL)
	viewer.SignIn("victor", victorPassword)
	require.False(t, browsertest.Eval[bool](viewer, `!!document.querySelector('a[href="/admin/users"]')`))
	require.Equal(t, 403, postStatus(viewer, "/admin/users"))
	require.Equal(t, 403, postStatus(viewer, "/admin/users/victor/tokens"))
	for _, x := range []*browsertest.Browser{br, nora, viewer} {
		x.NoJSErrors()
	}
}

// TestMembersPage: an owner adds a person, changes their role and removes them; the last owner
// cannot remove themselves.
func TestMembersPage(t *testing.T) {
	b := setup(t, false)
	_, err := b.st.CreateUser(context.Background(), b.st.Pool(), store.User{Username: "dana", DisplayName: "Dana"})
	require.NoError(t, err)
	require.NoError(t, b.st.AddMember(context.Background(), b.st.Pool(), b.seed.Project.ID, b.seed.User.ID, "owner"), "alice, the only owner")
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/members"), chromedp.WaitVisible(chromedp.ID("add-member")))
	br.Run(chromedp.SendKeys(chromedp.ID("m-user"), "nobody"), chromedp.Click(chromedp.ID("add-member-button")))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("no user nobody")`, 15*time.Second)
	br.Run(chromedp.SendKeys(chromedp.ID("m-user"), "dana"), chromedp.Click(chromedp.ID("add-member-button")))
	br.WaitFor(`!!document.querySelector("#member-dana")`, 15*time.Second)
	require.Equal(t, "developer", browsertest.Eval[string](br, `document.querySelector("#role-dana").value`))
	br.Run(chromedp.SetValue(chromedp.ID("role-dana"), "maintainer"), chromedp.Click(chromedp.CSS(`#member-dana form[action$="/role"] button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("dana is now maintainer")`, 15*time.Second)
	require.Equal(t, "maintainer", browsertest.Eval[string](br, `document.querySelector("#role-dana").value`))
	br.Page("members")
	br.Run(chromedp.Click(chromedp.CSS(`#member-alice form[action$="/remove"] button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("without an owner")`, 15*time.Second)
	br.Run(chromedp.Click(chromedp.CSS(`#member-dana form[action$="/remove"] button`)))
	br.WaitFor(`!document.querySelector("#member-dana")`, 15*time.Second)
	br.NoJSErrors()
}
