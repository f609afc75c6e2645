package kubetest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/kubetest"
)

// fieldOwner is the server-side apply field manager fluxbridge uses.
const fieldOwner = "fluxbridge"

// crashEnv makes the test binary start an Env and exit without stopping it,
// for TestReaper.
const crashEnv = "KUBETEST_CRASH"

var env *kubetest.Env

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		os.Exit(exitWithoutStop())
	}
	os.Exit(kubetest.Run(m, kubetest.Options{}, func(e *kubetest.Env) error {
		env = e
		return nil
	}))
}

// startEnv starts an Env of the test's own, stopped when the test ends.
func startEnv(t *testing.T, opts kubetest.Options) *kubetest.Env {
	t.Helper()
	start := time.Now()
	e, err := kubetest.Start(opts)
	require.NoError(t, err)
	t.Logf("env started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		start := time.Now()
		assert.NoError(t, e.Stop())
		t.Logf("env stopped in %s", time.Since(start).Round(time.Millisecond))
	})
	return e
}

func gitRepository(ns string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{
			URL:       "https://git.example.test/org/app.git",
			Interval:  metav1.Duration{Duration: 5 * time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
}

func kustomization(ns string) *kustomizev1.Kustomization {
	return &kustomizev1.Kustomization{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: kustomizev1.KustomizationSpec{
			Interval: metav1.Duration{Duration: 10 * time.Minute},
			Path:     "./deploy/prod",
			Prune:    true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{
				Kind: sourcev1.GitRepositoryKind,
				Name: "app",
			},
		},
	}
}

func TestApplyFluxObjects(t *testing.T) {
	ctx := t.Context()
	ns := env.NewNamespace(t)

	repo := gitRepository(ns)
	require.NoError(t, env.Apply(ctx, repo, fieldOwner))
	require.NotEmpty(t, repo.UID, "Apply stores the server's answer")
	require.Equal(t, sourcev1.GroupVersion.WithKind(sourcev1.GitRepositoryKind), repo.GroupVersionKind())

	ks := kustomization(ns)
	require.NoError(t, env.Apply(ctx, ks, fieldOwner))

	var gotRepo sourcev1.GitRepository
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(repo), &gotRepo))
	require.Equal(t, "https://git.example.test/org/app.git", gotRepo.Spec.URL)
	require.Equal(t, "main", gotRepo.Spec.Reference.Branch)
	requireAppliedBy(t, gotRepo.ManagedFields, fieldOwner)

	var gotKs kustomizev1.Kustomization
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(ks), &gotKs))
	require.Equal(t, "./deploy/prod", gotKs.Spec.Path)
	require.True(t, gotKs.Spec.Prune)
	require.Equal(t, "app", gotKs.Spec.SourceRef.Name)
	requireAppliedBy(t, gotKs.ManagedFields, fieldOwner)

	// A second apply changes only what changed, and the annotation Flux
	// reacts to is ours to set.
	ks = kustomization(ns)
	ks.Spec.Path = "./deploy/staging"
	ks.Annotations = map[string]string{meta.ReconcileRequestAnnotation: "2026-11-27T00:00:00Z"}
	require.NoError(t, env.Apply(ctx, ks, fieldOwner))
	require.Equal(t, "./deploy/staging", ks.Spec.Path)
	require.Equal(t, "2026-11-27T00:00:00Z", ks.Annotations[meta.ReconcileRequestAnnotation])
	require.Greater(t, ks.Generation, gotKs.Generation)
}

func requireAppliedBy(t *testing.T, fields []metav1.ManagedFieldsEntry, manager string) {
	t.Helper()
	for _, f := range fields {
		if f.Manager == manager && f.Operation == metav1.ManagedFieldsOperationApply {
			return
		}
	}
	require.Failf(t, "not applied by manager", "%q not among %+v", manager, fields)
}

func TestKubeconfigPath(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", env.KubeconfigPath())
	require.NoError(t, err)
	require.Equal(t, strings.TrimSuffix(env.Config.Host, "/"), strings.TrimSuffix(cfg.Host, "/"))

	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	var repos sourcev1.GitRepositoryList
	require.NoError(t, c.List(t.Context(), &repos))
}

func TestTwoEnvs(t *testing.T) {
	ctx := t.Context()
	other := startEnv(t, kubetest.Options{})
	require.NotEqual(t, env.Config.Host, other.Config.Host)

	ns := env.NewNamespace(t)
	require.NoError(t, env.Apply(ctx, gitRepository(ns), fieldOwner))

	otherNS := other.NewNamespace(t)
	repo := gitRepository(otherNS)
	repo.Spec.URL = "https://git.example.test/org/other.git"
	require.NoError(t, other.Apply(ctx, repo, fieldOwner))

	var list sourcev1.GitRepositoryList
	require.NoError(t, other.Client.List(ctx, &list))
	require.Len(t, list.Items, 1, "the second cluster sees only its own objects")
	require.Equal(t, "https://git.example.test/org/other.git", list.Items[0].Spec.URL)
	require.NoError(t, env.Client.List(ctx, &list, client.InNamespace(otherNS)))
	require.Empty(t, list.Items)
}

func TestRestartAPIServer(t *testing.T) {
	ctx := t.Context()
	e := startEnv(t, kubetest.Options{})
	ns := e.NewNamespace(t)
	repo := gitRepository(ns)
	require.NoError(t, e.Apply(ctx, repo, fieldOwner))
	key := client.ObjectKeyFromObject(repo)

	start := time.Now()
	require.NoError(t, e.StopAPIServer())
	t.Logf("apiserver stopped in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, e.StopAPIServer(), "stopping twice is a no-op")

	down, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	require.Error(t, e.Client.Get(down, key, &sourcev1.GitRepository{}), "apiserver is down")

	start = time.Now()
	require.NoError(t, e.StartAPIServer())
	t.Logf("apiserver restarted in %s", time.Since(start).Round(time.Millisecond))

	// Same address, same certificates, same etcd data.
	var got sourcev1.GitRepository
	require.NoError(t, e.Client.Get(ctx, key, &got))
	require.Equal(t, repo.UID, got.UID)

	cfg, err := clientcmd.BuildConfigFromFlags("", e.KubeconfigPath())
	require.NoError(t, err)
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	require.NoError(t, err)
	ks := kustomization(ns)
	require.NoError(t, c.Create(ctx, ks), "the kubeconfig still works and CRDs are served")
}

func TestStartMissingAssets(t *testing.T) {
	_, err := kubetest.Start(kubetest.Options{AssetsDir: t.TempDir()})
	require.ErrorContains(t, err, "make kube-assets")

	_, err = kubetest.Start(kubetest.Options{CRDDir: t.TempDir()})
	require.ErrorContains(t, err, "make crds")
}

func TestStartWorkloads(t *testing.T) {
	ctx := t.Context()
	e := startEnv(t, kubetest.Options{NoCRDs: true})

	start := time.Now()
	require.NoError(t, e.StartWorkloads(ctx))
	t.Logf("workloads ready in %s", time.Since(start).Round(time.Millisecond))

	ns := e.NewNamespace(t)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "registry.example.test/web:1"}},
				},
			},
		},
	}
	require.NoError(t, e.Apply(ctx, dep, fieldOwner))

	start = time.Now()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var got appsv1.Deployment
		require.NoError(c, e.Client.Get(ctx, client.ObjectKeyFromObject(dep), &got))
		require.Equal(c, int32(2), got.Status.AvailableReplicas)
		require.True(c, hasCondition(got.Status.Conditions, appsv1.DeploymentAvailable))
	}, 60*time.Second, 100*time.Millisecond)
	t.Logf("deployment available in %s", time.Since(start).Round(time.Millisecond))

	var pods corev1.PodList
	require.NoError(t, e.Client.List(ctx, &pods, client.InNamespace(ns)))
	require.Len(t, pods.Items, 2)
	for _, p := range pods.Items {
		require.Equal(t, kubetest.FakeNodeName, p.Spec.NodeName)
		require.Equal(t, corev1.PodRunning, p.Status.Phase)
	}
}

func hasCondition(conds []appsv1.DeploymentCondition, typ appsv1.DeploymentConditionType) bool {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// exitWithoutStop starts an Env, prints its kubeconfig path and returns
// without calling Stop, like a test process that panics or times out.
func exitWithoutStop() int {
	e, err := kubetest.Start(kubetest.Options{NoCRDs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(e.KubeconfigPath())
	return 3
}

func TestReaper(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reaper needs /proc")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	require.Equal(t, 3, exitErr.ExitCode())
	dir := filepath.Dir(strings.TrimSpace(string(out)))
	require.True(t, strings.HasPrefix(filepath.Base(dir), "kubetest-"), "work dir %q", dir)

	start := time.Now()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoDirExists(c, dir)
		require.Empty(c, processesUsing(dir))
	}, 30*time.Second, 100*time.Millisecond)
	t.Logf("reaped in %s", time.Since(start).Round(time.Millisecond))
}

// processesUsing lists the live processes whose command line names a path
// inside dir.
func processesUsing(dir string) []string {
	var found []string
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(f), "stat"))
		if err == nil && strings.Contains(string(stat), ") Z ") {
			continue // a zombie waiting for init to reap it
		}
		found = append(found, f+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}

// TestRestartAPIServerWithOpenWatch: a client keeps a watch open (as the worker's informers
// do) while the apiserver is stopped and started again; the restart must really happen.
func TestRestartAPIServerWithOpenWatch(t *testing.T) {
	ctx := t.Context()
	e := startEnv(t, kubetest.Options{})
	ns := e.NewNamespace(t)
	wc, err := client.NewWithWatch(e.Config, client.Options{Scheme: e.Scheme})
	require.NoError(t, err)
	w, err := wc.Watch(ctx, &sourcev1.GitRepositoryList{}, client.InNamespace(ns))
	require.NoError(t, err)
	defer w.Stop()

	start := time.Now()
	require.NoError(t, e.StopAPIServer())
	t.Logf("apiserver with an open watch stopped in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, e.StartAPIServer())
	repo := gitRepository(ns)
	require.NoError(t, e.Apply(ctx, repo, fieldOwner), "the apiserver is back")
}

func TestStartProcess(t *testing.T) {
	greeter, err := env.StartProcess(kubetest.ProcessSpec{Name: "greeter", Path: "/usr/bin/env", Env: []string{"GREETING=world"}})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		exited, err := greeter.Exited()
		assert.True(c, exited)
		assert.NoError(c, err)
		assert.Contains(c, greeter.LogTail(), "GREETING=world")
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, greeter.Stop(), "stopping an exited process")

	sleeper, err := env.StartProcess(kubetest.ProcessSpec{Name: "sleeper", Path: "/bin/sleep", Args: []string{"60"}})
	require.NoError(t, err)
	_, err = env.StartProcess(kubetest.ProcessSpec{Name: "sleeper", Path: "/bin/sleep"})
	require.ErrorContains(t, err, "already running")
	_, err = env.StartProcess(kubetest.ProcessSpec{Name: "Bad_Name", Path: "/bin/sleep"})
	require.ErrorContains(t, err, "DNS label")
	// The reaper finds it by the Env's work directory on its command line.
	if runtime.GOOS == "linux" {
		require.NotEmpty(t, processesUsing(filepath.Join(filepath.Dir(env.KubeconfigPath()), "procs", "sleeper")))
	}
	exited, _ := sleeper.Exited()
	require.False(t, exited)
	require.NoError(t, sleeper.Stop())
	exited, _ = sleeper.Exited()
	require.True(t, exited)

	d, err := env.Dir("storage")
	require.NoError(t, err)
	require.DirExists(t, d)
}

// TestKeptDir: an Env on Options.Dir leaves its work directory on Stop, and a new Env on it
// has the objects of the first (the sandbox of `make run` keeps its cluster this way).
func TestKeptDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cluster")
	ctx := context.Background()
	first, err := kubetest.Start(kubetest.Options{Dir: dir, NoCRDs: true})
	require.NoError(t, err)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "kept"}, Data: map[string]string{"k": "v"}}
	require.NoError(t, first.Client.Create(ctx, cm))
	require.NoError(t, first.Stop())
	require.DirExists(t, filepath.Join(dir, "etcd"), "Stop left the directory")

	second := startEnv(t, kubetest.Options{Dir: dir, NoCRDs: true})
	var got corev1.ConfigMap
	require.NoError(t, second.Client.Get(ctx, client.ObjectKeyFromObject(cm), &got))
	require.Equal(t, "v", got.Data["k"])
	kc, err := clientcmd.LoadFromFile(second.KubeconfigPath())
	require.NoError(t, err)
	require.Equal(t, strings.TrimSuffix(second.Config.Host, "/"), strings.TrimSuffix(kc.Clusters[kc.Contexts[kc.CurrentContext].Cluster].Server, "/"),
		"the kubeconfig names the new apiserver")
}
