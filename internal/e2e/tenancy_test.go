package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestImpersonationConfinesKustomization: the rig's apiserver authorizes with RBAC, and the
// Kustomization a first deploy bootstraps impersonates the environment's ServiceAccount, which
// is admin in the environment's namespaces and nothing else. The environment owns two
// namespaces, so its Kustomization has no targetNamespace: the impersonation alone confines it.
// A developer's push of a manifest for another namespace fails the Kustomization with the
// apiserver's refusal and creates nothing there; removing it heals the environment.
func TestImpersonationConfinesKustomization(t *testing.T) {
	ctx, c := context.Background(), rig.Env.Client
	p := newBareProject(t, "tenant")
	mustCall(t, http.StatusOK, http.MethodPatch, p.path("/environments/dev"), obj{"gitops_config": obj{"namespaces": []any{"tenant-extra"}}})

	out := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/deployments"), mergeForm(obj{"method": "gitops-ui"}, microservice("api", "1.0.0", 1)))
	kustID := id(out, "kustomization", "id")
	p.waitDeployment(t, id(out, "deployment", "id"), "succeeded")
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)

	const sa = "fluxbridge-tenant-dev"
	var ks kustomizev1.Kustomization
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: "tenant-dev"}, &ks))
	require.Equal(t, sa, ks.Spec.ServiceAccountName)
	require.Empty(t, ks.Spec.TargetNamespace, "two namespaces: no targetNamespace")
	require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: sa}, &corev1.ServiceAccount{}))
	for _, ns := range []string{p.namespace, "tenant-extra"} {
		var rb rbacv1.RoleBinding
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: sa}, &rb), "admin in %s", ns)
		require.Equal(t, "admin", rb.RoleRef.Name)
		require.Equal(t, sa, rb.Subjects[0].Name)
	}

	// A manifest for a namespace the environment does not own.
	wt := rig.Git.clone(t, p.slug)
	wt.write(t, "clusters/dev/escape.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: escape\n  namespace: default\ndata:\n  k: v\n")
	bad := wt.commitAndPush(t, "write into default")
	start := time.Now()
	mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", kustID), obj{"with_source": true})
	var r obj
	if !assert.Eventually(t, func() bool {
		r = p.resource(t, kustID)
		return r["last_attempted_revision"] == "main@sha1:"+bad && r["status_reason"] == "ReconciliationFailed"
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("the Kustomization never failed at %s: %v", bad, r)
	}
	t.Logf("the push outside the environment failed the Kustomization after %s", time.Since(start).Round(time.Millisecond))
	require.Contains(t, r["status_message"], "forbidden")
	require.Contains(t, r["status_message"], `User "system:serviceaccount:flux-system:`+sa+`"`)
	err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "escape"}, &corev1.ConfigMap{})
	require.True(t, apierrors.IsNotFound(err), "nothing was written outside the environment: %v", err)
	requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)

	// Removing it heals the environment.
	require.NoError(t, os.Remove(filepath.Join(wt.dir, "clusters", "dev", "escape.yaml")))
	good := wt.commitAndPush(t, "stay at home")
	start = time.Now()
	mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", kustID), obj{"with_source": true})
	p.waitResource(t, kustID, "ready", good)
	t.Logf("healed after %s", time.Since(start).Round(time.Millisecond))
}
