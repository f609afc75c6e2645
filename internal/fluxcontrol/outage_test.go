package fluxcontrol_test

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/fluxbridge/fluxbridge/internal/faultnet"
	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// everySecond retries a failed job a second later: the outage test measures recovery, not
// River's backoff.
type everySecond struct{}

func (everySecond) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Second) }

// proxiedKubeconfig writes a kubeconfig for env whose server is a faultnet proxy in front of
// env's apiserver, and returns its path and the proxy.
func proxiedKubeconfig(t *testing.T, env *kubetest.Env) (string, *faultnet.Proxy) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(env.KubeconfigPath())
	require.NoError(t, err)
	var p *faultnet.Proxy
	for _, c := range cfg.Clusters {
		u, err := url.Parse(c.Server)
		require.NoError(t, err)
		if p == nil {
			p, err = faultnet.New(u.Host)
			require.NoError(t, err)
			t.Cleanup(p.Close)
		}
		c.Server = strings.Replace(c.Server, u.Host, p.Addr(), 1)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path, p
}

// chaosOutage is how long an outage test keeps a server away (faultnet.Outage).
func chaosOutage(t *testing.T) time.Duration {
	t.Helper()
	d, err := faultnet.Outage()
	require.NoError(t, err)
	return d
}

// TestApiserverDownThenBack: a Flux object created while its cluster's apiserver is away
// (connections refused, open ones cut) is not lost: its apply job fails its attempts with the
// reason, and once the apiserver is back the object is applied, once, and the watch (which lost
// its connection too) reports its status again.
func TestApiserverDownThenBack(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out an outage")
	}
	outage := chaosOutage(t)
	b := setupWith(t, setupOpts{westProxy: true})
	b.westProxy.Down()
	src := b.create(t, "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "during-outage",
		"cluster": "west", "repository_id": b.repo.ID, "config": map[string]any{}})
	time.Sleep(outage)
	r := b.resource(t, src.ID)
	require.NotEqual(t, store.ApplyApplied, r.ApplyStatus, "nothing applied while the apiserver is away")
	var attempts int
	require.NoError(t, b.pool.QueryRow(t.Context(), `SELECT COALESCE(max(attempt), 0) FROM river_job WHERE kind = 'apply_resource'`).Scan(&attempts))
	require.NoError(t, b.westProxy.Up())
	back := time.Now()
	r = b.waitApplied(t, src.ID)
	took := time.Since(back)
	require.NotEmpty(t, live(t, r).GetUID())
	writeStatus(t, r, metav1.ConditionTrue, "Succeeded", "stored artifact after the outage", "", nil)
	require.Eventually(t, func() bool { return b.resource(t, src.ID).StatusMessage == "stored artifact after the outage" }, time.Minute, poll,
		"the watch reconnected")
	t.Logf("apiserver away %s: %d apply attempts meanwhile; applied %s after it returned, and the watch reported its status",
		outage, attempts, took.Round(time.Millisecond))
}
