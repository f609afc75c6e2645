package fluxcontrol_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBadInputIsA400NamingTheField sends what people get wrong; nothing is stored.
func TestBadInputIsA400NamingTheField(t *testing.T) {
	b := setup(t)
	ks := func(cfg map[string]any) map[string]any {
		return map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "app", "config": cfg}
	}
	src := map[string]any{"kind": "GitRepository", "name": "app"}
	tests := []struct {
		name, path string
		body       any
		status     int
		field      string
	}{
		{"unknown body field", "/projects/shop/resources", map[string]any{"kind": "Bucket", "nmae": "x"}, 400, "nmae"},
		{"not JSON", "/projects/shop/resources", "kind=Bucket", 400, "body"},
		{"unknown kind", "/projects/shop/resources", map[string]any{"kind": "Deployment", "namespace": b.ns, "name": "x", "cluster": "east"}, 400, "kind"},
		{"bad name", "/projects/shop/resources", map[string]any{"kind": "HelmRepository", "namespace": b.ns, "name": "Web_App", "cluster": "east", "config": map[string]any{"url": "https://c.example.com"}}, 400, "name"},
		{"bad namespace", "/projects/shop/resources", map[string]any{"kind": "HelmRepository", "namespace": "a.b", "name": "x", "cluster": "east", "config": map[string]any{"url": "https://c.example.com"}}, 400, "namespace"},
		{"unknown cluster", "/projects/shop/resources", map[string]any{"kind": "HelmRepository", "namespace": b.ns, "name": "x", "cluster": "mars", "config": map[string]any{"url": "https://c.example.com"}}, 400, "clusters[0]"},
		{"applier without environment", "/projects/shop/resources", map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "x", "cluster": "east", "config": map[string]any{"sourceRef": src}}, 400, "environment"},
		{"unknown environment", "/projects/shop/resources", map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": "x", "environments": []string{"qa"}, "config": map[string]any{"sourceRef": src}}, 400, "environments[0]"},
		{"typo in config", "/projects/shop/environments/staging/resources", ks(map[string]any{"sourceRef": src, "intreval": "5m"}), 400, "config.intreval"},
		{"wrong type", "/projects/shop/environments/staging/resources", ks(map[string]any{"sourceRef": src, "prune": "yes"}), 400, "config.prune"},
		{"day duration", "/projects/shop/environments/staging/resources", ks(map[string]any{"sourceRef": src, "interval": "1d"}), 400, "config.interval"},
		{"path escapes", "/projects/shop/environments/staging/resources", ks(map[string]any{"sourceRef": src, "path": "../../etc"}), 400, "config.path"},
		{"bad health check", "/projects/shop/environments/staging/resources", ks(map[string]any{"sourceRef": src, "healthChecks": []any{map[string]any{"name": "web"}}}), 400, "config.healthChecks[0].kind"},
		{"git repository without url", "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "x", "cluster": "east"}, 400, "config.url"},
		{"repository of nobody", "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "x", "cluster": "east", "repository_id": 999}, 400, "repository_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e apiError
			require.Equal(t, tt.status, b.do(t, http.MethodPost, tt.path, tt.body, &e), "%+v", e)
			require.Equal(t, tt.field, e.Field, e.Error)
		})
	}
	require.Zero(t, b.count(t, `SELECT count(*) FROM gitops_resources`))
	require.Zero(t, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource'`))
	require.Equal(t, http.StatusNotFound, b.do(t, http.MethodGet, "/projects/shop/resources/424242/yaml", nil, nil))
}

// TestConcurrentCreatesAllApplied: 40 creates from 8 clients at once, across both clusters;
// every one is applied, exactly once.
func TestConcurrentCreatesAllApplied(t *testing.T) {
	b := setup(t)
	const n, clients = 40, 8
	start := time.Now()
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < n; i += clients {
				cl := []string{"east", "west"}[i%2]
				codes <- b.do(t, http.MethodPost, "/projects/shop/resources", map[string]any{"kind": "HelmRepository",
					"namespace": b.ns, "name": fmt.Sprintf("charts-%02d", i), "cluster": cl,
					"config": map[string]any{"url": "https://charts.example.com"}}, nil)
			}
		}()
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Equal(t, http.StatusCreated, code)
	}
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM gitops_resources WHERE apply_status = 'applied'`) == n
	}, waitFor, 50*time.Millisecond)
	t.Logf("%d resources created through the API and applied to 2 clusters in %s", n, time.Since(start).Round(time.Millisecond))
	require.Eventually(t, func() bool {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'apply_resource' AND state = 'completed'`) == n
	}, waitFor, 50*time.Millisecond, "one apply job per resource, all completed")
}
