package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"

	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// fluxNamespace is where a first deploy creates the environment's GitRepository and
// Kustomization, and where image automation objects go.
const fluxNamespace = "flux-system"

// deployTarget is where a deploy to an environment goes in Git, and which Flux Kustomization
// applies it. The rules (README "Where deploys go"):
//
//   - Repository: the environment's gitops_config.repository, else the project's only
//     repository with GitOps enabled.
//   - Branch: the environment's gitops_config.branch, else the environment's name with the
//     "branch" layout, else the repository's branch.
//   - Directory: the environment's gitops_config.path, else the repository's path with the
//     "branch" layout, else <repository path>/<environment>. Each app gets <directory>/<app>/.
//   - Namespace: the form's, else the environment's gitops_config.namespace, else
//     <project>-<environment>.
//   - Kustomization: the one named by the environment's gitops_config.kustomization, else the
//     environment's only Kustomization, else the one of several whose config.path is the
//     directory. With none, the first deploy bootstraps the environment (env_bootstrap.go):
//     a GitRepository for the branch unless the cluster has one, and the Kustomization,
//     named <project>-<environment> in flux-system unless gitops_config.kustomization
//     names it.
type deployTarget struct {
	repo      *store.Repository
	branch    string
	dir       string // the environment's directory; "" is the repository root
	namespace string
	// namespaces are the namespaces the environment owns (namespace among them).
	namespaces []string
	// kustomization is the existing row, or nil when the deploy creates one.
	kustomization *store.Resource
	kustName      string
	kustNamespace string
}

// appDir is the app's directory in the repository.
func (t *deployTarget) appDir(app string) string { return path.Join(t.dir, app) }

// fluxPath is the environment's directory as a Kustomization's path: "./"-prefixed, as Flux
// writes it.
func (t *deployTarget) fluxPath() string { return "./" + t.dir }

// renderOptions are the manifest options of a deploy of form: the namespace, and the app's
// ImagePolicy when the form asks for image automation.
func (t *deployTarget) renderOptions(sc *reqScope, form manifest.Form) manifest.Options {
	o := manifest.Options{Namespace: t.namespace}
	if form.ImageAutomation != nil {
		o.ImagePolicy = manifest.ImagePolicyRef(fluxNamespace, imageAutomationName(sc, form.App))
	}
	return o
}

// imageAutomationName names the ImageRepository, ImagePolicy and ImageUpdateAutomation of an
// app of the request's environment: <project>-<environment>-<app>, unique in the cluster.
func imageAutomationName(sc *reqScope, app string) string {
	return sc.Project.Slug + "-" + sc.Env.Name + "-" + app
}

// resolveTarget applies the rules above for the request's environment. The form's namespace
// and the environment's config are checked here; problems name the field at fault. A deploy
// may only target a namespace its environment owns.
func (h *Handler) resolveTarget(ctx context.Context, db store.DBTX, sc *reqScope, formNamespace string) (*deployTarget, error) {
	env := sc.Env
	ec, err := env.Gitops()
	if err != nil {
		return nil, errConflictf("gitops_config", "environment %s: %v", env.Name, err)
	}
	repos, err := h.store.AllRepositories(ctx, db, sc.Project.ID)
	if err != nil {
		return nil, err
	}
	p, err := placementOf(sc.Project, env, repos, true)
	if err != nil {
		return nil, err
	}
	t := &deployTarget{repo: p.repo, branch: p.branch, dir: p.dir, namespace: p.namespace, namespaces: p.namespaces}
	if formNamespace != "" {
		if !nameRE.MatchString(formNamespace) {
			return nil, errBadRequest("namespace", "%q is not a valid namespace (a DNS label)", formNamespace)
		}
		if !p.ownsNamespace(formNamespace) {
			return nil, h.refuse("foreign_namespace", errBadRequest("namespace",
				"environment %s owns namespaces %s only; deploy into one of them, or add %s to its gitops_config.namespaces",
				env.Name, namespaceList(p.namespaces), formNamespace))
		}
		t.namespace = formNamespace
	}
	return t, h.findKustomization(ctx, db, sc, ec, t)
}

// findKustomization fills t with the environment's Kustomization, or with the name of the one
// a first deploy creates.
func (h *Handler) findKustomization(ctx context.Context, db store.DBTX, sc *reqScope, ec store.EnvGitops, t *deployTarget) error {
	t.kustName, t.kustNamespace = sc.Project.Slug+"-"+sc.Env.Name, fluxNamespace
	if k := ec.Kustomization; k != nil && k.Name != "" {
		t.kustName = k.Name
		if k.Namespace != "" {
			t.kustNamespace = k.Namespace
		}
	}
	all, err := h.store.AllResources(ctx, db, store.ResourceFilter{ProjectID: sc.Project.ID, EnvironmentID: sc.Env.ID, Kind: "Kustomization"})
	if err != nil {
		return err
	}
	var byPath []*store.Resource
	for i := range all {
		k := &all[i]
		if k.Name == t.kustName && k.Namespace == t.kustNamespace && k.Cluster == sc.Env.Cluster {
			t.kustomization = k
			return nil
		}
		var c struct {
			Path string `json:"path"`
		}
		_ = json.Unmarshal(k.Config, &c)
		if path.Clean("./"+c.Path) == path.Clean(t.fluxPath()) {
			byPath = append(byPath, k)
		}
	}
	switch {
	case ec.Kustomization != nil && ec.Kustomization.Name != "":
		return nil // named but not there yet: a first deploy creates it under that name
	case len(all) == 1:
		t.kustomization = &all[0]
	case len(byPath) == 1:
		t.kustomization = byPath[0]
	case len(all) > 1:
		return errConflictf("gitops_config.kustomization", "environment %s has %d Kustomizations; name the one that applies %s in gitops_config.kustomization", sc.Env.Name, len(all), t.fluxPath())
	}
	if t.kustomization != nil {
		t.kustName, t.kustNamespace = t.kustomization.Name, t.kustomization.Namespace
	}
	return nil
}

// errConflictf is a 409 naming the configuration field at fault.
func errConflictf(field, format string, args ...any) *httpError {
	return &httpError{Status: http.StatusConflict, Field: field, Msg: fmt.Sprintf(format, args...)}
}
