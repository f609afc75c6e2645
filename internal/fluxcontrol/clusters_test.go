package fluxcontrol_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestClusters lists the configured clusters with their reachability and version.
func TestClusters(t *testing.T) {
	t.Logf("two apiservers with the Flux CRDs started in %s", startup.Round(time.Millisecond))
	b := setup(t)
	var out struct{ Items []cluster.Status }
	start := time.Now()
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/clusters", nil, &out))
	t.Logf("GET /clusters (two probes) in %s", time.Since(start).Round(time.Millisecond))
	require.Len(t, out.Items, 3)
	names := []string{out.Items[0].Name, out.Items[1].Name, out.Items[2].Name}
	require.Equal(t, []string{"east", "edge", "west"}, names, "sorted by name (the list's cursor)")
	for _, c := range []cluster.Status{out.Items[0], out.Items[2]} {
		require.True(t, c.Reachable, "%s: %s", c.Name, c.Error)
		require.True(t, c.Managed)
		require.True(t, strings.HasPrefix(c.Version, "v1."), c.Version)
	}
	require.False(t, out.Items[1].Managed, "a webhook-only cluster has no kubeconfig")

	var e apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/resources", map[string]any{
		"kind": "HelmRepository", "namespace": b.ns, "name": "charts", "cluster": "edge", "config": map[string]any{"url": "https://charts.example.com"}}, &e))
	require.Equal(t, "clusters[0]", e.Field)
	require.Contains(t, e.Error, "no kubeconfig")
}

// TestApplyToManyClusters: one call creates one resource (one row, one job) per cluster, in one
// transaction; lists and the overview group by cluster.
func TestApplyToManyClusters(t *testing.T) {
	b := setup(t)
	var out created
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/resources", map[string]any{
		"kind": "HelmRepository", "namespace": b.ns, "name": "bitnami", "clusters": []string{"east", "west"},
		"config": map[string]any{"url": "oci://registry-1.docker.io/bitnamicharts", "type": "oci"}}, &out))
	require.Len(t, out.Items, 2)
	require.Equal(t, []string{"east", "west"}, []string{out.Items[0].Cluster, out.Items[1].Cluster})
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit_logs WHERE action = 'resource.create'`), "one call, one audit row")
	for _, r := range out.Items {
		r = b.waitApplied(t, r.ID)
		require.Equal(t, "oci", specField(live(t, r), "type"))
	}

	// The same config to both environments (each in its own cluster).
	require.Equal(t, http.StatusCreated, b.do(t, http.MethodPost, "/projects/shop/resources", map[string]any{
		"kind": "Kustomization", "namespace": b.ns, "name": "infra", "environments": []string{"staging", "production"},
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "infra"}}}, &out))
	require.Len(t, out.Items, 2)
	for _, r := range out.Items {
		r = b.waitApplied(t, r.ID)
		require.Equal(t, "./deploy/"+map[string]string{"east": "staging", "west": "prod"}[r.Cluster], specField(live(t, r), "path"))
	}

	// A failing target rolls the whole call back.
	var e apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPost, "/projects/shop/resources", map[string]any{
		"kind": "HelmRepository", "namespace": b.ns, "name": "more", "clusters": []string{"east", "nowhere"},
		"config": map[string]any{"url": "https://charts.example.com"}}, &e))
	require.Equal(t, "clusters[1]", e.Field)
	require.Zero(t, b.count(t, `SELECT count(*) FROM gitops_resources WHERE name = 'more'`))

	var ov struct {
		Clusters []struct {
			Name         string
			Health       map[string]int
			Environments []struct {
				Name       string
				SyncPolicy string `json:"sync_policy"`
				Resources  []struct{ Name string }
			}
		}
	}
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects/shop/overview", nil, &ov))
	require.Len(t, ov.Clusters, 2)
	require.Equal(t, "east", ov.Clusters[0].Name)
	require.Equal(t, "west", ov.Clusters[1].Name)
	var envNames []string
	for _, e := range ov.Clusters[1].Environments {
		envNames = append(envNames, e.Name+"/"+e.SyncPolicy)
	}
	require.ElementsMatch(t, []string{"(project-wide)/", "production/manual"}, envNames)

	var list struct{ Items []store.Resource }
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects/shop/environments/production/resources", nil, &list))
	require.Len(t, list.Items, 1)
	require.Equal(t, "west", list.Items[0].Cluster)

	var y string
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/projects/shop/export", nil, &y))
	require.Equal(t, 4, strings.Count(y, "---\n"), y)
	require.Contains(t, y, "# cluster: west\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\n")
	require.NotContains(t, y, "status:")
	require.NotContains(t, y, "uid:")
}

// TestDependsOnValidation: unknown dependencies and cycles are a 400 naming them; a dependency
// cannot be deleted while something depends on it.
func TestDependsOnValidation(t *testing.T) {
	b := setup(t)
	mk := func(name string, deps ...string) (int, apiError, store.Resource) {
		var d []any
		for _, n := range deps {
			d = append(d, map[string]any{"name": n})
		}
		var out created
		var e apiError
		body := map[string]any{"kind": "Kustomization", "namespace": b.ns, "name": name,
			"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "src"}, "dependsOn": d}}
		code := b.do(t, http.MethodPost, "/projects/shop/environments/staging/resources", body, &out)
		if code != http.StatusCreated {
			b.do(t, http.MethodPost, "/projects/shop/environments/staging/resources", body, &e)
			return code, e, store.Resource{}
		}
		return code, e, out.Items[0]
	}
	code, e, _ := mk("a", "ghost")
	require.Equal(t, http.StatusBadRequest, code)
	require.Equal(t, "config.dependsOn", e.Field)
	require.Contains(t, e.Error, "unknown Kustomization "+b.ns+"/ghost")

	_, _, c := mk("c")
	_, _, bb := mk("b", "c")
	_, _, a := mk("a", "b")
	_ = bb
	var e2 apiError
	require.Equal(t, http.StatusBadRequest, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", c.ID), map[string]any{
		"config": map[string]any{"sourceRef": map[string]any{"kind": "GitRepository", "name": "src"}, "dependsOn": []any{map[string]any{"name": "a"}}}}, &e2))
	require.Equal(t, "config.dependsOn", e2.Field)
	ns := b.ns
	require.Equal(t, fmt.Sprintf("cycle: Kustomization/%s/c -> Kustomization/%s/a -> Kustomization/%s/b -> Kustomization/%s/c", ns, ns, ns, ns), e2.Error)

	var e3 apiError
	require.Equal(t, http.StatusConflict, b.do(t, http.MethodDelete, fmt.Sprintf("/projects/shop/resources/%d", c.ID), nil, &e3))
	require.Contains(t, e3.Error, "Kustomization/"+ns+"/b")
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodDelete, fmt.Sprintf("/projects/shop/resources/%d", a.ID), nil, nil))
}

// TestGitCredentialsSecret: the repository's credentials become the Secret the GitRepository's
// secretRef names, in Flux's keys; rotating them (HTTPS to SSH) rewrites it, and deleting the
// resource deletes it.
func TestGitCredentialsSecret(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	src := b.create(t, "/projects/shop/resources", map[string]any{"kind": "GitRepository", "namespace": b.ns, "name": "app-src",
		"cluster": "west", "repository_id": b.repo.ID, "config": map[string]any{"ref": map[string]any{"branch": "main"}}})
	src = b.waitApplied(t, src.ID)
	require.Equal(t, "app-src-auth", specField(live(t, src), "secretRef", "name"))
	secret := func() *corev1.Secret {
		var s corev1.Secret
		require.NoError(t, west.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: "app-src-auth"}, &s))
		return &s
	}
	s := secret()
	require.Equal(t, "bot", string(s.Data["username"]))
	require.Equal(t, "s3cret", string(s.Data["password"]))

	// Rotate to SSH in the credential store; the next apply rewrites the Secret.
	ssh := map[string][]byte{"identity": []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
		"identity.pub": []byte("ssh-ed25519 AAAA bot"), "known_hosts": []byte("git.example.com ssh-ed25519 AAAA")}
	require.NoError(t, b.secrets.Put(ctx, b.repo.CredentialRef, ssh))
	require.Equal(t, http.StatusOK, b.do(t, http.MethodPut, fmt.Sprintf("/projects/shop/resources/%d", src.ID), map[string]any{
		"config": map[string]any{"ref": map[string]any{"branch": "main"}, "interval": "5m"}}, nil))
	b.waitApplied(t, src.ID)
	s = secret()
	require.Equal(t, ssh["known_hosts"], s.Data["known_hosts"])
	require.Equal(t, ssh["identity"], s.Data["identity"])
	require.NotContains(t, s.Data, "password", "rotated keys replace the old ones")

	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodDelete, fmt.Sprintf("/projects/shop/resources/%d", src.ID), nil, nil))
	b.waitDeleted(t, src.ID)
	err := west.Client.Get(ctx, client.ObjectKey{Namespace: b.ns, Name: "app-src-auth"}, &corev1.Secret{})
	require.Error(t, err)
}

// TestJobsSurviveApiserverOutage: with west's apiserver stopped, an apply fails and says why;
// River retries it, and it succeeds once the apiserver is back; a watch started then sees
// status again.
//
// The watch is stopped first: kube-apiserver does not finish a graceful stop within kubetest's
// 20 s while watch streams are open, and kubetest then reports the (killed) apiserver as still
// running, so StartAPIServer would not start it again.
func TestJobsSurviveApiserverOutage(t *testing.T) {
	b := setup(t)
	b.stopWatch()
	start := time.Now()
	require.NoError(t, west.StopAPIServer())
	t.Logf("apiserver stopped in %s", time.Since(start).Round(time.Millisecond))
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = west.StartAPIServer()
		}
	})
	src := b.create(t, "/projects/shop/resources", map[string]any{"kind": "HelmRepository", "namespace": b.ns, "name": "charts",
		"cluster": "west", "config": map[string]any{"url": "https://charts.example.com"}})
	require.Eventually(t, func() bool {
		r := b.resource(t, src.ID)
		return r.ApplyStatus == store.ApplyFailed && strings.Contains(r.ApplyError, "connect")
	}, waitFor, poll)
	require.GreaterOrEqual(t, b.count(t, `SELECT max(attempt) FROM river_job WHERE kind = 'apply_resource'`), 1)

	start = time.Now()
	require.NoError(t, west.StartAPIServer())
	restarted = true
	t.Logf("apiserver restarted in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	r := b.waitApplied(t, src.ID)
	t.Logf("apply succeeded %s after the apiserver came back (attempts: %d)", time.Since(start).Round(time.Millisecond),
		b.count(t, `SELECT max(attempt) FROM river_job WHERE kind = 'apply_resource'`))
	require.Empty(t, r.ApplyError)

	// A watch of the restarted apiserver: a status write reaches the API.
	b.startWatch(t, nil)
	writeStatus(t, r, "True", "Succeeded", "stored artifact: revision 'sha256:abc'", "", nil)
	require.Eventually(t, func() bool { return b.resource(t, r.ID).Status == "ready" }, waitFor, poll)
}
