package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
)

// consoleDeploys is how many deploys the console test makes through the form, each one a
// sample of the watch → page latency.
const consoleDeploys = 3

// settledJS records, in the page, the wall-clock time (ms since the epoch) at which the
// progress view first shows the deployment succeeded; -1 when it already did on arrival.
const settledJS = `(() => {
  const done = () => { const el = document.querySelector("#progress-state"); return el && el.dataset.state === "succeeded"; };
  window.__settled = done() ? -1 : 0;
  new MutationObserver(() => {
    if (window.__settled === 0 && done()) window.__settled = performance.timeOrigin + performance.now();
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
  return true;
})()`

// TestConsoleDeployOnFlux is the newcomer's flow on the real Flux controllers: sign in, fill
// the deploy form, preview, deploy, and watch the progress view reach "succeeded" from Flux's
// own verdict without a reload; then roll back from the app's history and unlock it. Each deploy measures how long the status fluxbridge wrote
// (the deployment's finished_at, in the same transaction as its change-feed row) takes to
// show on the open page.
func TestConsoleDeployOnFlux(t *testing.T) {
	p := newProject(t, "webui", projectOpts{})
	br := browsertest.New(t, rig.App.url)
	br.SignIn("admin", adminPassword)

	var lat []time.Duration
	var firstID int64
	for i := range consoleDeploys {
		tag := fmt.Sprintf("1.%d.0", i)
		br.Run(chromedp.Navigate(rig.App.url+"/projects/webui/environments/dev/deploy"), chromedp.WaitVisible(chromedp.ID("app")))
		br.Run(
			chromedp.SendKeys(chromedp.ID("app"), "shop"+kb.Tab),
			chromedp.SendKeys(chromedp.ID("image"), "registry.example.com/acme/shop"),
			chromedp.SendKeys(chromedp.ID("tag"), tag+kb.Enter),
		)
		br.WaitFor(`!!document.querySelector("#deploy-button")`, 30*time.Second)
		require.Contains(t, br.Text("pre.diff"), "registry.example.com/acme/shop:"+tag)
		br.Run(chromedp.Click(chromedp.ID("deploy-button")))
		br.WaitFor(`!!document.querySelector("#progress-state")`, 30*time.Second)
		require.True(t, browsertest.Eval[bool](br, settledJS))
		browsertest.Eval[int](br, `window.__marker = 7`)
		br.WaitFor(`window.__settled !== 0`, settleTimeout)
		require.Equal(t, 7, browsertest.Eval[int](br, `window.__marker`), "no reload")
		txt := br.Text("#progress")
		require.Regexp(t, `[0-9a-f]{7}`, br.Text("#progress .sha"), "the commit")
		require.Contains(t, txt, "pods ready", "the app's replicas, read from its Deployment")
		if i == 0 {
			br.Page("e2e-deployment-succeeded")
		}

		settled := browsertest.Eval[float64](br, `window.__settled`)
		path := browsertest.Eval[string](br, `location.pathname`)
		depID, err := strconv.ParseInt(path[strings.LastIndex(path, "/")+1:], 10, 64)
		require.NoError(t, err)
		var status string
		var finished float64
		require.NoError(t, rig.App.pool.QueryRow(context.Background(),
			`SELECT status, extract(epoch FROM finished_at) * 1000 FROM deployments WHERE id = $1`, depID).Scan(&status, &finished))
		require.Equal(t, "succeeded", status)
		if i == 0 {
			firstID = depID
		}
		if settled > 0 {
			lat = append(lat, time.Duration((settled-finished)*float64(time.Millisecond)))
		}
	}
	p.waitResource(t, p.kustID, "ready", "")

	// Roll back from the app's history to the first deploy: the page shows what changes, the
	// rollback goes live through Flux, the cluster runs the first image again, and the app is
	// locked until Unlock.
	br.Run(chromedp.Click(chromedp.ID("history-link")), chromedp.WaitVisible(chromedp.ID("history")))
	br.Run(chromedp.Click(chromedp.CSS(fmt.Sprintf("#target-%d a.button", firstID))), chromedp.WaitVisible(chromedp.ID("changes")))
	require.Contains(t, br.Text("#changes"), "1.0.0")
	require.Contains(t, br.Text("#changes"), fmt.Sprintf("1.%d.0", consoleDeploys-1))
	br.Page("e2e-rollback-confirm")
	br.Run(chromedp.Click(chromedp.ID("rollback-button")))
	br.WaitFor(`!!document.querySelector("#progress-state")`, 30*time.Second)
	br.WaitFor(`["succeeded","failed"].includes(document.querySelector("#progress-state").dataset.state)`, settleTimeout)
	require.Equal(t, "succeeded", browsertest.Eval[string](br, `document.querySelector("#progress-state").dataset.state`), br.Text("#progress"))
	var dep appsv1.Deployment
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: "shop"}, &dep))
	require.Equal(t, "registry.example.com/acme/shop:1.0.0", dep.Spec.Template.Spec.Containers[0].Image)
	br.Run(chromedp.Click(chromedp.ID("history-link")), chromedp.WaitVisible(chromedp.ID("history")))
	br.WaitFor(`!!document.querySelector("#unlock-button")`, 30*time.Second)
	// The deployment's verdict and the rollback's own phase are written by different jobs: the
	// lock reads "Rolling back" until the rollback job has seen the verdict too. Wait for it.
	require.Eventually(t, func() bool {
		if strings.Contains(br.Text("#lock"), "Locked") {
			return true
		}
		br.Run(chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("lock")))
		return false
	}, settleTimeout, time.Second, br.Text("#lock"))
	br.Page("e2e-rollback-locked")
	br.Run(chromedp.Click(chromedp.ID("unlock-button")))
	br.WaitFor(`(document.querySelector("#flash")||{textContent:""}).textContent.includes("Unlocked")`, 30*time.Second)
	require.False(t, browsertest.Eval[bool](br, `!!document.querySelector("#lock")`))

	// The cluster as the admin sees it: reachable, with the apiserver's version.
	br.Run(chromedp.Navigate(rig.App.url+"/clusters"), chromedp.WaitVisible(chromedp.ID("cluster-"+clusterName)))
	require.Contains(t, br.Text("#cluster-"+clusterName), "Reachable")
	require.Regexp(t, `v1\.\d+\.\d+`, br.Text("#cluster-"+clusterName))
	br.Page("e2e-clusters")

	br.NoJSErrors()
	require.NotEmpty(t, lat)
	slices.Sort(lat)
	fmt.Printf("e2e: console: deployment status written → shown on the open progress page: min %s, median %s, max %s (%d deploys)\n",
		lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
}
