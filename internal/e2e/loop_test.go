package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestGitOpsLoop runs both directions of the loop on one environment, in order: a UI deploy
// (a), a developer's push (b), a broken push (c) and a rollback to (a)'s commit (d).
func TestGitOpsLoop(t *testing.T) {
	p := newProject(t, "loop", projectOpts{gitInterval: "5s"})
	var first struct {
		depID int64
		sha   string
	}

	// Each step builds on the previous one: the loop stops at the first that fails.
	step := func(name string, f func(t *testing.T)) {
		if !t.Failed() {
			t.Run(name, f)
		}
	}
	step("a: UI deploy to dev is applied by Flux and recorded with its commit", func(t *testing.T) {
		first.depID = p.deploy(t, microservice("api", "1.0.0", 1))
		d := p.waitDeployment(t, first.depID, "succeeded")
		first.sha = d["commit_sha"].(string)
		require.Equal(t, "gitops-ui", d["deployment_method"])
		require.Equal(t, rig.Git.head(t, p.slug), first.sha, "the commit fluxbridge pushed")
		require.Contains(t, d["revision"], first.sha, "Flux reported that commit applied")

		p.waitResource(t, p.kustID, "ready", first.sha)

		var dep appsv1.Deployment
		require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: "api"}, &dep))
		require.Equal(t, "registry.example.com/acme/api:1.0.0", dep.Spec.Template.Spec.Containers[0].Image)

		// The event came through the Alert fluxbridge wired: signed, with its metadata.
		ev := latestEvent(t, "Kustomization", p.slug+"-dev", first.sha)
		require.Equal(t, "dev", ev["environment"], "%v", ev)
		require.Equal(t, clusterName, ev["cluster"], "%v", ev)
		require.Equal(t, p.slug, ev["project"], "%v", ev)
		require.Equal(t, true, strings.HasPrefix(ev["revision"].(string), "main@sha1:"))
	})

	step("b: a developer's push is applied by Flux and recorded as gitops-git", func(t *testing.T) {
		w := rig.Git.clone(t, p.slug)
		w.write(t, "clusters/dev/config/app-config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: "+p.namespace+"\ndata:\n  feature: \"on\"\n")
		sha := w.commitAndPush(t, "add app-config by hand")

		d := p.waitGitDeployment(t, sha, "succeeded")
		require.Equal(t, float64(p.kustID), d["gitops_resource_id"])
		require.Contains(t, d["revision"], sha)
		require.Equal(t, "Dev Eloper <dev@example.com>", d["commit_author"], "the developer who pushed, read from the commit")

		// The webhook and the watch both report the new artifact (R5b.2): one audit row.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			n := 0
			for _, r := range mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?action=flux.NewArtifact&target_type=GitRepository"), nil)["items"].([]any) {
				if det, _ := r.(obj)["details"].(obj); det != nil && det["revision"] == "main@sha1:"+sha {
					n++
				}
			}
			assert.Equal(c, 1, n)
		}, settleTimeout, pollEvery)
		repo := mustCall(t, http.StatusOK, http.MethodGet, p.path("/repositories/%d", p.repoID), nil)
		require.Equal(t, "synced", repo["flux_sync_status"], "%v", repo)
		require.Contains(t, repo["last_synced_revision"], sha)

		var cm corev1.ConfigMap
		require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: "app-config"}, &cm))
		require.Equal(t, "on", cm.Data["feature"])
	})

	step("c: a broken push fails the deployment, notifies with Flux's error and is audited", func(t *testing.T) {
		w := rig.Git.clone(t, p.slug)
		w.write(t, "clusters/dev/config/broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: "+p.namespace+"\ndata:\n  size: 3\n")
		sha := w.commitAndPush(t, "add a broken config map")

		d := p.waitGitDeployment(t, sha, "failed")
		require.NotEmpty(t, d["message"])
		p.waitResource(t, p.kustID, "failed", "")

		// The notification, the deployment's audit row and the webhook's audit row come from
		// different processes (the watch, the event job): wait for each, bounded.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			notes := mustCall(t, http.StatusOK, http.MethodGet, p.path("/notifications"), nil)["items"].([]any)
			if !assert.NotEmpty(c, notes) {
				return
			}
			n := notes[0].(obj)
			assert.Equal(c, "error", n["severity"])
			assert.Contains(c, n["title"], "Kustomization flux-system/"+p.slug+"-dev failed")
			assert.Contains(c, n["body"], "broken", "Flux's error message names the object: %v", n)
			assert.Contains(c, n["body"], "How to fix:", "%v", n)
		}, settleTimeout, pollEvery)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			audit := mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?target_type=deployment&target_id=%d", id(d, "id")), nil)["items"].([]any)
			if assert.NotEmpty(c, audit) {
				assert.Equal(c, "deployment.failed", audit[0].(obj)["action"])
			}
			flux := mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?actor_type=flux&target_type=Kustomization"), nil)["items"].([]any)
			assert.True(c, hasAction(flux, "flux.ReconciliationFailed"), "%v", flux)
		}, settleTimeout, pollEvery)

		// The developer reverts; Flux applies the revert and the environment is healthy again.
		w.pull(t)
		rig.Git.git(t, w.dir, "revert", "--no-edit", sha)
		rig.Git.git(t, w.dir, "push", "-q", "origin", "HEAD:main")
		p.waitGitDeployment(t, rig.Git.head(t, p.slug), "succeeded")
	})

	step("d: rollback to a's commit restores a's content in the cluster", func(t *testing.T) {
		second := p.deploy(t, microservice("api", "1.1.0", 2))
		p.waitDeployment(t, second, "succeeded")
		requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.1.0", 2)

		targets := mustCall(t, http.StatusOK, http.MethodGet, p.path("/environments/dev/apps/api/rollback-targets"), nil)["items"].([]any)
		var found bool
		for _, it := range targets {
			found = found || it.(obj)["commit_sha"] == first.sha
		}
		require.True(t, found, "a's deployment is restorable: %v", targets)

		rb := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/apps/api/rollback"), obj{"deployment_id": first.depID})
		rbID, depID := id(rb, "rollback", "id"), id(rb, "deployment", "id")
		got := p.waitRollback(t, rbID, "succeeded")
		require.Equal(t, true, got["locked"], "the app stays locked until unlocked")
		d := p.waitDeployment(t, depID, "succeeded")
		require.Equal(t, rig.Git.head(t, p.slug), d["commit_sha"], "a new commit on top of the branch")
		require.Contains(t, d["revision"], d["commit_sha"])

		// Read back from the apiserver: a's image and replicas; b's config map untouched.
		requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)
		var cm corev1.ConfigMap
		require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: "app-config"}, &cm))

		audit := mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?target_type=deployment&target_id=%d", depID), nil)["items"].([]any)
		for _, a := range []string{"deployment.rollback", "deployment.pushed", "deployment.rollback_succeeded"} {
			require.True(t, hasAction(audit, a), "audit has %s: %v", a, audit)
		}
	})
}

// waitGitDeployment waits until a gitops-git deployment of commit sha reaches a final status,
// and requires want.
func (p *project) waitGitDeployment(t testing.TB, sha, want string) obj {
	t.Helper()
	var found obj
	if !assert.Eventually(t, func() bool {
		items := mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments?method=gitops-git"), nil)["items"].([]any)
		for _, it := range items {
			if d := it.(obj); d["commit_sha"] == sha {
				found = d
				return d["status"] == "succeeded" || d["status"] == "failed"
			}
		}
		return false
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("no finished gitops-git deployment of %s: %v", sha, found)
	}
	require.Equal(t, want, found["status"], "%v", found)
	return found
}

// waitRollback waits until a rollback reaches a final phase, and requires want.
func (p *project) waitRollback(t testing.TB, rbID int64, want string) obj {
	t.Helper()
	var rb obj
	if !assert.Eventually(t, func() bool {
		rb = mustCall(t, http.StatusOK, http.MethodGet, p.path("/environments/dev/rollbacks/%d", rbID), nil)
		switch rb["phase"] {
		case "succeeded", "failed", "timed_out", "cancelled":
			return true
		}
		return false
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("rollback %d never finished: %v", rbID, rb)
	}
	require.Equal(t, want, rb["phase"], "%v", rb)
	return rb
}

// requireImage reads a Deployment from the apiserver and checks its image and replicas.
func requireImage(t testing.TB, namespace, name, image string, replicas int32) {
	t.Helper()
	var dep appsv1.Deployment
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &dep))
	require.Equal(t, image, dep.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, replicas, *dep.Spec.Replicas)
}

// hasAction tells whether audit rows hold one with action.
func hasAction(rows []any, action string) bool {
	for _, r := range rows {
		if r.(obj)["action"] == action {
			return true
		}
	}
	return false
}
