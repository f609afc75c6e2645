package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	imageautov1 "github.com/fluxcd/image-automation-controller/api/v1"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestImageAutomation is scenario f: a deploy that asks for image automation creates the
// ImageRepository, ImagePolicy and ImageUpdateAutomation with the settings asked for, marks
// the image in the manifest with the policy's setter, and a rollback of the app suspends its
// ImageUpdateAutomation until the app is unlocked. (The image controllers cannot be built
// here; their objects are checked on the apiserver.)
func TestImageAutomation(t *testing.T) {
	p := newProject(t, "auto", projectOpts{})
	const name = "auto-dev-web" // <project>-<environment>-<app>
	ctx, c := context.Background(), rig.Env.Client
	form := microservice("web", "1.0.0", 1)
	form["image_automation"] = obj{"semver": ">=1.0.0 <2.0.0", "scan_interval": "1m"}

	first := p.deploy(t, form)
	d := p.waitDeployment(t, first, "succeeded")
	manifest := rig.Git.show(t, p.slug, d["commit_sha"].(string), "clusters/dev/web/deployment.yaml")
	require.Contains(t, manifest, `image: registry.example.com/acme/web:1.0.0 # {"$imagepolicy": "flux-system:`+name+`"}`)

	var repo imagev1.ImageRepository
	var policy imagev1.ImagePolicy
	var auto imageautov1.ImageUpdateAutomation
	key := client.ObjectKey{Namespace: fluxNamespace, Name: name}
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		require.NoError(c2, c.Get(ctx, key, &repo))
		require.NoError(c2, c.Get(ctx, key, &policy))
		require.NoError(c2, c.Get(ctx, key, &auto))
	}, settleTimeout, pollEvery)
	require.Equal(t, "registry.example.com/acme/web", repo.Spec.Image)
	require.Equal(t, "1m0s", repo.Spec.Interval.Duration.String())
	require.Equal(t, name, policy.Spec.ImageRepositoryRef.Name)
	require.Equal(t, ">=1.0.0 <2.0.0", policy.Spec.Policy.SemVer.Range)
	require.Equal(t, "GitRepository", auto.Spec.SourceRef.Kind)
	require.Equal(t, p.slug, auto.Spec.SourceRef.Name)
	require.Equal(t, "main", auto.Spec.GitSpec.Checkout.Reference.Branch)
	require.Equal(t, "./clusters/dev/web", auto.Spec.Update.Path)
	require.Equal(t, imageautov1.UpdateStrategySetters, auto.Spec.Update.Strategy)
	require.Equal(t, committer.Email, auto.Spec.GitSpec.Commit.Author.Email)
	require.False(t, auto.Spec.Suspend)
	// The Alert of the environment covers them, as it covers every managed object.
	require.Contains(t, alertSources(t, "fluxbridge-auto-dev"), "ImageUpdateAutomation/"+name)

	form["tag"] = "1.1.0"
	second := p.deploy(t, form)
	p.waitDeployment(t, second, "succeeded")
	requireImage(t, p.namespace, "web", "registry.example.com/acme/web:1.1.0", 1)

	// The rollback suspends the app's image automation: it would otherwise move web straight
	// back to the newest 1.x tag.
	rb := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/apps/web/rollback"), obj{"deployment_id": first})
	got := p.waitRollback(t, id(rb, "rollback", "id"), "succeeded")
	requireImage(t, p.namespace, "web", "registry.example.com/acme/web:1.0.0", 1)
	locked := got["locked_resource_ids"].([]any)
	require.Len(t, locked, 1, "%v", got)
	r := p.resource(t, int64(locked[0].(float64)))
	require.Equal(t, "ImageUpdateAutomation", r["kind"])
	require.Equal(t, true, r["suspended"])
	requireSuspended(t, key, true)
	targets := mustCall(t, http.StatusOK, http.MethodGet, p.path("/environments/dev/apps/web/rollback-targets"), nil)
	require.Equal(t, got["id"], targets["lock"].(obj)["id"], "the app is locked by the rollback")
	// A deploy of the app is still possible (a person decides); the lock holds the automation.
	status, _ := call(t, http.MethodPost, p.path("/environments/dev/apps/web/unlock"), nil)
	require.Equal(t, http.StatusOK, status)
	requireSuspended(t, key, false)
	targets = mustCall(t, http.StatusOK, http.MethodGet, p.path("/environments/dev/apps/web/rollback-targets"), nil)
	require.Nil(t, targets["lock"])
	status, _ = call(t, http.MethodPost, p.path("/environments/dev/apps/web/unlock"), nil)
	require.Equal(t, http.StatusConflict, status, "not locked any more")
}

// requireSuspended waits until the ImageUpdateAutomation key has spec.suspend want.
func requireSuspended(t testing.TB, key client.ObjectKey, want bool) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var auto imageautov1.ImageUpdateAutomation
		require.NoError(c, rig.Env.Client.Get(context.Background(), key, &auto))
		require.Equal(c, want, auto.Spec.Suspend)
	}, settleTimeout, pollEvery)
}

// TestImageAutomationPushRecorded is R6b.5 on the rig: image-reflector-controller finds a new
// tag and image-automation-controller pushes the setter change, which the real
// source-controller and kustomize-controller apply. fluxbridge writes one audit row for the
// new tag and records the push as a gitops-git deployment triggered by image automation,
// authored by the automation's bot, naming the ImageUpdateAutomation. (The image controllers
// cannot be built here: the test writes the statuses they would and pushes the commit they
// would, with their default message and the automation's author.)
func TestImageAutomationPushRecorded(t *testing.T) {
	p := newProject(t, "autopush", projectOpts{})
	const name = "autopush-dev-web"
	ctx, c := context.Background(), rig.Env.Client
	form := microservice("web", "1.0.0", 1)
	form["image_automation"] = obj{"semver": ">=1.0.0 <2.0.0"}
	p.waitDeployment(t, p.deploy(t, form), "succeeded")
	key := client.ObjectKey{Namespace: fluxNamespace, Name: name}

	// image-reflector-controller: the policy resolves to 1.1.0.
	var policy imagev1.ImagePolicy
	require.EventuallyWithT(t, func(c2 *assert.CollectT) { require.NoError(c2, c.Get(ctx, key, &policy)) }, settleTimeout, pollEvery)
	policy.Status.LatestRef = &imagev1.ImageRef{Name: "registry.example.com/acme/web", Tag: "1.1.0"}
	policy.Status.ObservedPreviousRef = &imagev1.ImageRef{Name: "registry.example.com/acme/web", Tag: "1.0.0"}
	policy.Status.ObservedGeneration = policy.Generation
	policy.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded", ObservedGeneration: policy.Generation,
		LastTransitionTime: metav1.Now(), Message: "Latest image tag for registry.example.com/acme/web resolved to 1.1.0 (previously registry.example.com/acme/web:1.0.0)"}}
	require.NoError(t, c.Status().Update(ctx, &policy))

	// image-automation-controller: the setter change, committed as the automation's author.
	w := rig.Git.clone(t, p.slug)
	file := "clusters/dev/web/deployment.yaml"
	w.write(t, file, strings.Replace(w.read(t, file), "web:1.0.0", "web:1.1.0", 1))
	rig.Git.git(t, w.dir, "add", "-A")
	rig.Git.git(t, w.dir, "commit", "-q", "--author="+committer.Name+" <"+committer.Email+">", "-m", "Update from image update automation")
	rig.Git.git(t, w.dir, "push", "-q", "origin", "HEAD:main")
	sha := rig.Git.git(t, w.dir, "rev-parse", "HEAD")
	var auto imageautov1.ImageUpdateAutomation
	require.NoError(t, c.Get(ctx, key, &auto))
	now := metav1.Now()
	auto.Status.LastPushCommit, auto.Status.LastPushTime, auto.Status.LastAutomationRunTime = sha, &now, &now
	auto.Status.ObservedGeneration = auto.Generation
	auto.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Succeeded", ObservedGeneration: auto.Generation,
		LastTransitionTime: now, Message: "repository up-to-date"}}
	require.NoError(t, c.Status().Update(ctx, &auto))
	// source-controller fetches on its interval; ask now, as the automation's push would be
	// picked up by a Receiver.
	mustCall(t, http.StatusAccepted, http.MethodPost, p.path("/resources/%d/reconcile", p.gitRepoID), nil)

	d := p.waitGitDeployment(t, sha, "succeeded")
	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		got := mustCall(t, http.StatusOK, http.MethodGet, p.path("/deployments/%d", id(d, "id")), nil)
		assert.Equal(c2, "image-automation", got["trigger"])
		assert.Equal(c2, fluxNamespace+"/"+name, got["trigger_ref"])
		assert.Equal(c2, committer.Name+" <"+committer.Email+">", got["commit_author"])
	}, settleTimeout, pollEvery)
	requireImage(t, p.namespace, "web", "registry.example.com/acme/web:1.1.0", 1)

	require.EventuallyWithT(t, func(c2 *assert.CollectT) {
		rows := mustCall(t, http.StatusOK, http.MethodGet, p.path("/audit?action=image.updated"), nil)["items"].([]any)
		if assert.Len(c2, rows, 1) {
			r := rows[0].(obj)
			assert.Equal(c2, "Image policy flux-system/"+name+": registry.example.com/acme/web 1.0.0 → 1.1.0", r["message"])
			assert.Equal(c2, clusterName, r["cluster"])
		}
	}, settleTimeout, pollEvery)
}
