package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxbridge/fluxbridge/internal/browsertest"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
	"github.com/fluxbridge/fluxbridge/internal/sandbox"
)

// TestRunSandbox is a newcomer's `make run`: with no database and no config, devenv starts
// fluxbridge at once and the sandbox beside it; the sandbox cluster joins, the demo project
// appears, the bootstrap admin signs in to the console with the printed password and deploys
// from the form, and the progress view goes live through the fleet repository and Flux. Ctrl-C
// stops all of it, and the next run finds the same project and the app in the same cluster.
func TestRunSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries and a cluster")
	}
	assets, err := sandbox.FindAssets()
	if err != nil {
		if os.Getenv("FLUXBRIDGE_E2E_REQUIRE") == "1" {
			t.Fatal(err)
		}
		t.Skipf("the sandbox's binaries are not built (make rig-links): %v", err)
	}
	work, binDir := newWorkDir(t)
	listen := freeAddr(t)
	base := "http://" + listen

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "FLUXBRIDGE_CONFIG=") && !strings.HasPrefix(kv, envSandbox+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, "LISTEN_ADDR="+listen, "METRICS_ADDR="+freeAddr(t), "LOG_FORMAT=json",
		"KUBEBUILDER_ASSETS="+assets.Kube, "FLUX_CRDS_DIR="+assets.CRDs, "FLUX_BIN_DIR="+assets.Flux)

	// run starts devenv and returns its output, and a stop that sends Ctrl-C and waits.
	run := func(t *testing.T) (*syncBuffer, func()) {
		cmd := exec.Command(filepath.Join(binDir, "devenv"), "run")
		cmd.Dir, cmd.Env = work, env
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		require.NoError(t, cmd.Start())
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Log(logs.String())
			}
		})
		return logs, stop
	}
	waitLine := func(t *testing.T, logs *syncBuffer, s string, d time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool { return strings.Contains(logs.String(), s) }, d, 100*time.Millisecond, "no %q in devenv's output", s)
	}

	crlog.SetLogger(logr.Discard())
	logs, stop := run(t)
	// fluxbridge answers before the sandbox is up.
	waitLine(t, logs, "sandbox | starting the cluster", time.Minute)
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 100*time.Millisecond)
	require.Contains(t, logs.String(), "devenv | console: "+base+"/ — sign in as admin with password ")
	waitLine(t, logs, `sandbox | ready: created project "demo"`, 4*time.Minute)

	// The newcomer signs in with the printed password and deploys from the form.
	pw, err := os.ReadFile(filepath.Join(work, ".data", "admin-password"))
	require.NoError(t, err)
	br := browsertest.New(t, base)
	br.SignIn("admin", strings.TrimSpace(string(pw)))
	br.Run(chromedp.Navigate(base+"/projects/demo/environments/dev/deploy"), chromedp.WaitVisible(chromedp.ID("app")))
	br.Run(
		chromedp.SendKeys(chromedp.ID("app"), "hello"+kb.Tab),
		chromedp.SendKeys(chromedp.ID("image"), "registry.example.com/demo/hello"),
		chromedp.SendKeys(chromedp.ID("tag"), "1.0.0"+kb.Enter),
	)
	br.WaitFor(`!!document.querySelector("#deploy-button")`, time.Minute)
	br.Page("sandbox-preview")
	br.Run(chromedp.Click(chromedp.ID("deploy-button")))
	br.WaitFor(`!!document.querySelector("#progress-state")`, time.Minute)
	br.WaitFor(`["succeeded","failed"].includes(document.querySelector("#progress-state").dataset.state)`, 3*time.Minute)
	br.Page("sandbox-deployment")
	require.Equal(t, "succeeded", browsertest.Eval[string](br, `document.querySelector("#progress-state").dataset.state`), br.Text("#progress"))
	br.NoJSErrors()

	kubeconfig := filepath.Join(work, ".data", "sandbox", "cluster", "kubeconfig")
	apiserver := serverOf(t, kubeconfig)
	stop()
	first := logs.String()
	require.Contains(t, first, "devenv | stopping")
	_, err = http.Get(apiserver)
	require.Error(t, err, "the sandbox's apiserver is gone with devenv")

	// The next run: the same project, and the cluster still runs the app.
	logs, stop = run(t)
	waitLine(t, logs, `sandbox | ready: project "demo" deploys to cluster sandbox`, 4*time.Minute)
	c := kubeClient(t, kubeconfig)
	var deps appsv1.DeploymentList
	require.NoError(t, c.List(context.Background(), &deps))
	var found *appsv1.Deployment
	for i := range deps.Items {
		if deps.Items[i].Name == "hello" {
			found = &deps.Items[i]
		}
	}
	require.NotNil(t, found, "the app is still in the cluster")
	require.Equal(t, "registry.example.com/demo/hello:1.0.0", found.Spec.Template.Spec.Containers[0].Image)
	stop()
	require.NotContains(t, logs.String(), "sandbox | building", "the binaries are found, nothing is built")
	for _, line := range strings.Split(first+logs.String(), "\n") {
		if strings.Contains(line, "cluster up in") {
			t.Log(line[:strings.Index(line, ":")])
		}
	}
}

// serverOf is the apiserver URL in a kubeconfig.
func serverOf(t *testing.T, kubeconfig string) string {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	return cfg.Host
}

func kubeClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	scheme, err := fluxscheme.New()
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	require.NoError(t, err)
	return c
}
