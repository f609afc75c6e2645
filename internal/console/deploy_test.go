package console_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
)

// TestDeployFormToPushed fills the deploy form by keyboard, sees an invalid field at the field
// with the focus on it, previews the diff, deploys, and watches the progress reach "pushed"
// (the worker's real push to the real Git server) without a reload; then Flux's failure (as
// the watch records it) shows with its message and the fix hint.
func TestDeployFormToPushed(t *testing.T) {
	b := setup(t, true)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments/production/deploy"), chromedp.WaitVisible(chromedp.ID("app")))
	br.Page("deploy-form")
	br.Run(
		chromedp.SendKeys(chromedp.ID("app"), "shop"+kb.Tab),
		chromedp.SendKeys(chromedp.ID("image"), "ghcr.io/acme/shop"),
		chromedp.SendKeys(chromedp.ID("tag"), "latest"+kb.Enter),
	)
	br.WaitFor(`!!document.querySelector("#tag-err")`, 15*time.Second)
	require.Contains(t, br.Text("#tag-err"), "latest")
	require.Equal(t, "tag", browsertest.Eval[string](br, `document.activeElement.id`), "focus moves to the first error")
	require.Equal(t, "shop", browsertest.Eval[string](br, `document.querySelector("#app").value`), "input kept")
	br.Page("deploy-form-error")

	browsertest.Eval[string](br, `document.querySelector("#tag").value = ""`)
	br.Run(chromedp.SendKeys(chromedp.ID("tag"), "1.4.2"+kb.Enter))
	br.WaitFor(`!!document.querySelector("#deploy-button")`, 30*time.Second)
	require.Contains(t, br.Text("pre.diff"), "ghcr.io/acme/shop:1.4.2")
	br.Page("deploy-preview")

	br.Run(chromedp.Click(chromedp.ID("deploy-button")))
	br.WaitFor(`!!document.querySelector("#progress-state")`, 30*time.Second)
	browsertest.Eval[int](br, `window.__marker = 7`)
	br.WaitFor(`["pushed","applied","rolling_out","succeeded"].includes(document.querySelector("#progress-state").dataset.state)`, 60*time.Second)
	require.Equal(t, 7, browsertest.Eval[int](br, `window.__marker`), "no reload")
	require.Regexp(t, `[0-9a-f]{7}`, br.Text("#progress .sha"))
	// The commit's diff follows the push without a reload: the files it added, the new image.
	br.WaitFor(`document.querySelector("#commit-diff").textContent.includes("added")`, 30*time.Second)
	require.Contains(t, br.Text("#commit-diff pre.diff"), "+kind: Deployment")
	require.Contains(t, br.Text("#commit-diff pre.diff"), "ghcr.io/acme/shop:1.4.2")
	require.Regexp(t, `added\s+clusters/\S*shop`, br.Text("#commit-diff ul.files"))
	br.Page("deployment-pushed")
	br.Run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("deployment-audit")))
	require.Contains(t, br.Text("#deployment-audit"), "deployment.create", "the deployment's audit rows")

	path := browsertest.Eval[string](br, `location.pathname`)
	id := path[strings.LastIndex(path, "/")+1:]
	ctx := context.Background()
	_, err := b.st.Pool().Exec(ctx, `UPDATE gitops_resources SET status = 'failed', status_reason = 'HealthCheckFailed',
		status_message = 'timeout waiting for: [Deployment/webapp/shop status: ''InProgress'']'
		WHERE id = (SELECT gitops_resource_id FROM deployments WHERE id = $1)`, id)
	require.NoError(t, err)
	_, err = b.st.Pool().Exec(ctx, `UPDATE deployments SET status = 'failed', finished_at = now(),
		message = 'health check failed after 5m: timeout waiting for Deployment/webapp/shop' WHERE id = $1`, id)
	require.NoError(t, err)
	br.WaitFor(`document.querySelector("#progress-state").dataset.state === "failed"`, 15*time.Second)
	txt := br.Text("#progress")
	require.Contains(t, txt, "health check failed")
	require.Contains(t, txt, "How to fix")
	br.Page("deployment-failed")
	br.NoJSErrors()
}

// TestSaveTemplateFromDeployForm: the deploy form saves what was filled in as a project
// template (a bad name shown at its field), the templates page lists it with what it sets, and
// Delete removes it.
func TestSaveTemplateFromDeployForm(t *testing.T) {
	b := setup(t, false)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments/production/deploy"), chromedp.WaitVisible(chromedp.ID("app")))
	br.Run(
		chromedp.SendKeys(chromedp.ID("app"), "shop"),
		chromedp.SendKeys(chromedp.ID("image"), "ghcr.io/acme/shop"),
		chromedp.SendKeys(chromedp.ID("replicas"), "3"),
		chromedp.SendKeys(chromedp.ID("template_name"), "Team API"),
		chromedp.Click(chromedp.ID("save-template-button")),
	)
	br.WaitFor(`!!document.querySelector("#template_name-err")`, 15*time.Second)
	require.Contains(t, br.Text("#template_name-err"), "DNS label")
	require.Equal(t, "3", browsertest.Eval[string](br, `document.querySelector("#replicas").value`), "input kept")
	browsertest.Eval[string](br, `document.querySelector("#template_name").value = ""`)
	br.Run(chromedp.SendKeys(chromedp.ID("template_name"), "team-api"), chromedp.Click(chromedp.ID("save-template-button")))
	br.WaitFor(`location.pathname === "/projects/webapp/templates"`, 15*time.Second)
	require.Contains(t, br.Text("#flash"), "team-api")
	txt := br.Text("#template-team-api")
	require.Contains(t, txt, "replicas")
	require.Contains(t, txt, "ghcr.io/acme/shop")
	require.NotContains(t, txt, "app\t", "not the app's name")
	require.Contains(t, br.Text("#template-microservice"), "built-in")
	br.Page("templates")

	br.Run(chromedp.Click(chromedp.CSS(`#template-team-api form button`)))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Deleted")`, 15*time.Second)
	require.False(t, browsertest.Eval[bool](br, `!!document.querySelector("#template-team-api")`))
	br.NoJSErrors()
}

// TestHelmTemplateInConsole: the templates page shows a saved helm-app template's Flux objects
// and recovery settings; the deploy form started from it has no container port, and its
// preview shows the HelmRelease and the chart's HelmRepository the deploy creates, with their
// YAML.
func TestHelmTemplateInConsole(t *testing.T) {
	b := setup(t, true)
	status, body := b.api(t, http.MethodPost, "/projects/webapp/templates", map[string]any{"name": "podinfo", "kind": "helm-app",
		"flux": map[string]any{"helmRelease": map[string]any{"chart": map[string]any{"chart": "podinfo", "version": "6.x",
			"source": map[string]any{"helmRepository": map[string]any{"url": "https://stefanprodan.github.io/podinfo"}}}}}})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	br := browsertest.New(t, b.srv.URL)
	br.SignIn("alice", alicePassword)
	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/templates"), chromedp.WaitVisible(chromedp.ID("template-podinfo")))
	txt := br.Text("#template-podinfo")
	require.Contains(t, txt, "HelmRepository (the chart's source), HelmRelease")
	require.Contains(t, br.Text("#template-helm-app"), "rolled back to the last release that worked")
	require.Contains(t, browsertest.Eval[string](br, `document.querySelector("#template-podinfo details.flux pre").textContent`), "remediateLastFailure: true")
	br.Page("templates-helm")

	br.Run(chromedp.Navigate(b.srv.URL+"/projects/webapp/environments/production/deploy?template=podinfo"), chromedp.WaitVisible(chromedp.ID("app")))
	require.Empty(t, browsertest.Eval[string](br, `(document.querySelector('[name="ports[0].container_port"]')||{value:""}).value`), "a chart brings its own ports")
	br.Run(chromedp.SendKeys(chromedp.ID("app"), "shop"), chromedp.Click(chromedp.ID("preview-button")))
	br.WaitFor(`!!document.querySelector("#deploy-button")`, 30*time.Second)
	page := br.Text("main")
	require.Contains(t, page, "Flux objects this deploy creates or changes")
	require.Contains(t, page, "HelmRelease flux-system/webapp-production-shop")
	require.Contains(t, page, "HelmRepository flux-system/webapp-production-shop")
	require.Contains(t, page, "strategy: rollback")
	br.Page("deploy-preview-helm")
	br.NoJSErrors()
}
