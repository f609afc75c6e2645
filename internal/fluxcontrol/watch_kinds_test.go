package fluxcontrol_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/internal/watch"
)

// TestWatchPicksUpKindsInstalledLater: a cluster that served only GitRepositories when the
// watch started (Flux installed without image automation) has its ImagePolicies watched once
// their CRDs are installed, without a restart and without the watch giving up its leadership.
func TestWatchPicksUpKindsInstalledLater(t *testing.T) {
	ctx := context.Background()
	all, err := kubetest.DefaultCRDDir()
	require.NoError(t, err)
	some := t.TempDir()
	b, err := os.ReadFile(filepath.Join(all, "source.toolkit.fluxcd.io_gitrepositories.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(some, "gitrepositories.yaml"), b, 0o644))
	north, err := kubetest.Start(kubetest.Options{CRDDir: some})
	require.NoError(t, err)
	t.Cleanup(func() { _ = north.Stop() })

	pool := storetest.NewDB(t)
	st := store.New(pool)
	p, err := st.CreateProject(ctx, pool, store.Project{Slug: "north", Name: "North"})
	require.NoError(t, err)
	row, err := st.CreateResource(ctx, pool, store.NewResource{ProjectID: p.ID, Cluster: "north",
		Kind: imagev1.ImagePolicyKind, Namespace: "flux-system", Name: "api"})
	require.NoError(t, err)

	reg, err := cluster.NewRegistry([]cluster.Spec{{Name: "north", Kubeconfig: north.KubeconfigPath(), FluxNamespace: "flux-system"}}, north.Scheme)
	require.NoError(t, err)
	var mu sync.Mutex
	var leads []bool
	leading := func() []bool { mu.Lock(); defer mu.Unlock(); return append([]bool(nil), leads...) }
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Run(wctx, watch.Deps{Store: st, LockConn: pool.Config().ConnConfig.Copy(), Clusters: reg.Managed(),
			Logger: zerolog.New(zerolog.NewTestWriter(t)), Rediscover: 100 * time.Millisecond,
			OnLeader: func(_ string, on bool) { mu.Lock(); leads = append(leads, on); mu.Unlock() }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return len(leading()) == 1 }, waitFor, poll, "the watch leads north")

	// Image automation is installed: its CRDs, then an ImagePolicy with a status.
	require.NoError(t, north.InstallCRDs(filepath.Join(all, "image.toolkit.fluxcd.io_imagerepositories.yaml"),
		filepath.Join(all, "image.toolkit.fluxcd.io_imagepolicies.yaml")))
	c := north.Client
	require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "flux-system"}}))
	ip := &imagev1.ImagePolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "flux-system", Name: "api"},
		Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: meta.NamespacedObjectReference{Name: "api"},
			Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: ">=1.0.0"}},
		},
	}
	require.NoError(t, c.Create(ctx, ip))
	ip.Status.ObservedGeneration = ip.Generation
	ip.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded",
		Message: "Latest image tag for registry.example.com/acme/api resolved to 1.4.3", ObservedGeneration: ip.Generation,
		LastTransitionTime: metav1.Now()}}
	require.NoError(t, c.Status().Update(ctx, ip))

	require.Eventually(t, func() bool {
		r, err := st.ResourceByID(ctx, pool, row.ID)
		return err == nil && r.Status == "ready"
	}, waitFor, poll, "the ImagePolicy's status reaches its row")
	r, err := st.ResourceByID(ctx, pool, row.ID)
	require.NoError(t, err)
	require.Contains(t, r.StatusMessage, "resolved to 1.4.3")
	require.Equal(t, []bool{true}, leading(), "the watch kept its leadership")
}
