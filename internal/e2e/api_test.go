package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Timeouts of the waits on Flux and fluxbridge, generous for a busy 2-core machine; a healthy
// rig settles a deploy in a few seconds.
const (
	settleTimeout = 2 * time.Minute
	pollEvery     = 50 * time.Millisecond
)

// obj is a decoded JSON object of the API.
type obj = map[string]any

// call sends a JSON request to fluxbridge's API as the admin and decodes the answer.
func call(t testing.TB, method, path string, body any) (int, obj) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rig.App.url+"/api/v1"+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+rig.App.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := obj{}
	if len(bytes.TrimSpace(raw)) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// mustCall is call that requires the status want.
func mustCall(t testing.TB, want int, method, path string, body any) obj {
	t.Helper()
	status, out := call(t, method, path, body)
	require.Equal(t, want, status, "%s %s: %v", method, path, out)
	return out
}

// id reads a numeric ID out of a decoded object.
func id(o obj, path ...string) int64 {
	var v any = o
	for _, k := range path {
		v = v.(obj)[k]
	}
	return int64(v.(float64))
}

// project is a project set up the way a platform team would: an environment dev in the rig's
// cluster, the fleet repository over HTTPS with basic auth, its GitRepository and the
// environment's Kustomization, both created through the resources API.
type project struct {
	slug      string
	repoID    int64
	gitRepoID int64 // the GitRepository resource
	kustID    int64 // the dev Kustomization resource
	namespace string
}

// projectOpts shape newProject.
type projectOpts struct {
	gitInterval string         // the GitRepository's interval; default 10m (fluxbridge triggers reconciles)
	envConfig   map[string]any // the environment's gitops_config
	timeout     string         // the Kustomization's health check timeout; default 1m
}

// newProject sets up a project; its repository is a fresh one named after the slug.
func newProject(t testing.TB, slug string, o projectOpts) *project {
	t.Helper()
	if o.gitInterval == "" {
		o.gitInterval = "10m"
	}
	if o.timeout == "" {
		o.timeout = "1m"
	}
	p := &project{slug: slug, namespace: slug + "-dev"}
	rig.Git.initRepo(t, slug)
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects", obj{"slug": slug, "name": slug})
	env := obj{"name": "dev", "kind": "dev", "cluster": clusterName}
	if o.envConfig != nil {
		env["gitops_config"] = o.envConfig
	}
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments", env)
	repo := mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/repositories", obj{
		"name": "fleet", "url": rig.Git.url(slug),
		"auth":   obj{"type": "https", "username": gitUser, "password": gitPass, "ca_cert": string(rig.Git.caPEM)},
		"gitops": obj{"enabled": true, "branch": "main", "path": "clusters"},
	})
	p.repoID = id(repo, "id")
	gr := mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/resources", obj{
		"kind": "GitRepository", "namespace": fluxNamespace, "name": slug, "cluster": clusterName, "repository_id": p.repoID,
		"config": obj{"ref": obj{"branch": "main"}, "interval": o.gitInterval},
	})
	p.gitRepoID = id(gr["items"].([]any)[0].(obj), "id")
	k := mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments/dev/resources", obj{
		"kind": "Kustomization", "namespace": fluxNamespace, "name": slug + "-dev", "repository_id": p.repoID,
		"config": obj{
			"sourceRef": obj{"kind": "GitRepository", "name": slug}, "path": "./clusters/dev", "prune": true,
			"wait": true, "interval": "10m", "retryInterval": "15s", "timeout": o.timeout,
		},
	})
	p.kustID = id(k["items"].([]any)[0].(obj), "id")
	// Flux does not create the apps' namespace; the platform does, once per environment.
	// (The Kustomization's first run may create it first, from an earlier deploy's file.)
	if err := rig.Env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.namespace}}); !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	// Both objects are in the cluster before the first deploy (until then the Kustomization
	// fails: its path does not exist yet).
	for _, rid := range []int64{p.gitRepoID, p.kustID} {
		require.Eventually(t, func() bool { return p.resource(t, rid)["apply_status"] == "applied" }, settleTimeout, pollEvery)
	}
	return p
}

// path prefixes a project route.
func (p *project) path(format string, args ...any) string {
	return "/projects/" + p.slug + fmt.Sprintf(format, args...)
}

// deploy sends a gitops-ui deploy of form to dev and returns the created deployment's ID.
func (p *project) deploy(t testing.TB, form obj) int64 {
	t.Helper()
	body := obj{"method": "gitops-ui"}
	for k, v := range form {
		body[k] = v
	}
	out := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/deployments"), body)
	return id(out, "deployment", "id")
}

// waitDeployment polls the deployment API until the deployment reaches a final status, and
// requires want.
func (p *project) waitDeployment(t testing.TB, depID int64, want string) obj {
	t.Helper()
	var d obj
	if !assert.Eventually(t, func() bool {
		_, d = call(t, http.MethodGet, p.path("/deployments/%d", depID), nil)
		switch d["status"] {
		case "succeeded", "failed", "cancelled", "rejected":
			return true
		}
		return false
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("deployment %d never finished: %v", depID, d)
	}
	if d["status"] != want {
		diagnose(t, p.slug)
	}
	require.Equal(t, want, d["status"], "%v", d)
	return d
}

// resource reads a resource through the API.
func (p *project) resource(t testing.TB, resID int64) obj {
	t.Helper()
	return mustCall(t, http.StatusOK, http.MethodGet, p.path("/resources/%d", resID), nil)
}

// waitResource waits until the resource API shows a resource with status and, unless sha is
// "", that commit applied.
func (p *project) waitResource(t testing.TB, resID int64, status, sha string) obj {
	t.Helper()
	var r obj
	if !assert.Eventually(t, func() bool {
		r = p.resource(t, resID)
		rev, _ := r["last_applied_revision"].(string)
		return r["status"] == status && (sha == "" || shaOf(rev) == sha)
	}, settleTimeout, pollEvery) {
		diagnose(t, p.slug)
		t.Fatalf("resource %d never %s at %s: %v", resID, status, sha, r)
	}
	return r
}

// microservice is the deploy form of a small microservice.
func microservice(app, tag string, replicas int) obj {
	return obj{"template": "microservice", "app": app, "image": "registry.example.com/acme/" + app, "tag": tag,
		"replicas": replicas, "ports": []any{obj{"container_port": 8080}}}
}

// shaOf returns the commit SHA in a Flux revision ("main@sha1:<sha>").
func shaOf(rev string) string {
	if i := strings.LastIndex(rev, ":"); i >= 0 {
		return rev[i+1:]
	}
	return rev
}

// mergeForm returns the keys of both forms, b's winning.
func mergeForm(a, b obj) obj {
	out := obj{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
