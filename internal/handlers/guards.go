package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// bootstrapAction is the policy action of bootstrapping an environment's Flux objects (its
// GitRepository and Kustomization): maintainers' work (R13.1), asked of a developer's first
// deploy too.
const bootstrapAction = "environment.bootstrap"

// bootstrapNames are the objects `flux bootstrap` makes in the Flux namespace: the cluster's
// root sync. fluxbridge never creates over them; an admin may import them.
var bootstrapNames = map[string]bool{
	fluxspec.KindGitRepository + "/flux-system": true,
	fluxspec.KindOCIRepository + "/flux-system": true,
	fluxspec.KindKustomization + "/flux-system": true,
}

// checkObjectFree refuses to create a resource for an object that exists in the cluster and
// that fluxbridge does not manage (the watch lists it as discovered), and for the objects of
// `flux bootstrap`: fluxbridge changes and deletes only what it made or was told to import.
func (h *Handler) checkObjectFree(ctx context.Context, db store.DBTX, cluster string, ref fluxspec.Ref) error {
	fluxNS := "flux-system"
	if h.clusters != nil {
		fluxNS = h.clusters.FluxNamespace(cluster)
	}
	if ref.Namespace == fluxNS && bootstrapNames[ref.Kind+"/"+ref.Name] {
		return h.refuse("reserved_object", &httpError{Status: http.StatusConflict, Field: "name",
			Msg: fmt.Sprintf("%s %s/%s is the root sync `flux bootstrap` makes in cluster %s; fluxbridge never creates over it: an admin may import it (POST …/resources/import)",
				ref.Kind, ref.Namespace, ref.Name, cluster)})
	}
	d, err := h.store.DiscoveredByRef(ctx, db, store.ObjectRef{Cluster: cluster, Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.refuse("foreign_object", &httpError{Status: http.StatusConflict, Field: "name",
		Msg: fmt.Sprintf("%s %s/%s already exists in cluster %s and is not fluxbridge's (%s); fluxbridge never takes over an object it did not make: an admin may import it (POST …/resources/import)",
			ref.Kind, ref.Namespace, ref.Name, cluster, d.Owner)})
}

// checkCredentials binds a GitRepository that uses a repository's credentials to that
// repository: its URL must be the repository's (compared normalised), and its credential
// Secret is the derived one (<name>-auth, next to the object), never a name of the caller's
// choosing that could overwrite another Secret.
func (h *Handler) checkCredentials(spec fluxspec.Spec, name string, repo *store.Repository) error {
	gr, ok := spec.(*fluxspec.GitRepositoryConfig)
	if !ok || repo == nil {
		return nil
	}
	if gr.URL != "" && !gitops.SameRepository(gr.URL, repo.URL) {
		return h.refuse("credential_url", errBadRequest("config.url",
			"a GitRepository of repository %s reads %s; leave config.url out (or set it to that URL), or drop repository_id to read another repository", repo.Name, repo.URL))
	}
	if want := fluxspec.AuthSecretName(name); repo.CredentialRef != "" && gr.SecretRef != "" && gr.SecretRef != want {
		return h.refuse("credential_secret", errBadRequest("config.secretRef",
			"repository %s's credentials go to the Secret %s that fluxbridge derives from the GitRepository's name; leave config.secretRef out", repo.Name, want))
	}
	return nil
}

// checkConfinement keeps an environment's appliers inside the environment: a Kustomization's
// targetNamespace, and the namespace a HelmRelease installs into, must be namespaces the
// environment owns, and both impersonate the environment's ServiceAccount (the default), never
// one of the caller's choosing.
func (h *Handler) checkConfinement(ctx context.Context, db store.DBTX, project *store.Project, env *store.Environment, namespace string, spec fluxspec.Spec) error {
	if env == nil || project == nil {
		return nil
	}
	p, err := h.envPlacement(ctx, db, project, env)
	if err != nil {
		return err
	}
	sa := envServiceAccount(project.Slug, env.Name)
	var target, account string
	switch c := spec.(type) {
	case *fluxspec.KustomizationConfig:
		target, account = c.TargetNamespace, c.ServiceAccount
	case *fluxspec.HelmReleaseConfig:
		target, account = c.TargetNamespace, c.ServiceAccount
		if c.CreateNamespace {
			return h.refuse("foreign_namespace", errBadRequest("config.createNamespace",
				"fluxbridge creates the namespaces of environment %s (%s) itself, and its HelmReleases may create none; leave createNamespace out", env.Name, namespaceList(p.namespaces)))
		}
		if target == "" && !p.ownsNamespace(namespace) {
			return h.refuse("foreign_namespace", errBadRequest("config.targetNamespace",
				"a HelmRelease of environment %s installs into its namespaces (%s) only; set targetNamespace to one of them", env.Name, namespaceList(p.namespaces)))
		}
	default:
		return nil
	}
	if target != "" && !p.ownsNamespace(target) {
		return h.refuse("foreign_namespace", errBadRequest("config.targetNamespace",
			"environment %s owns namespaces %s only; %q is not one of them", env.Name, namespaceList(p.namespaces), target))
	}
	if account != "" && account != sa {
		return h.refuse("service_account", errBadRequest("config.serviceAccountName",
			"an applier of environment %s impersonates the ServiceAccount %s that fluxbridge keeps for it (admin in its namespaces only); leave serviceAccountName out", env.Name, sa))
	}
	return nil
}

// mayChangeFlux refuses a deploy that would create, change or delete Flux objects (bootstrap
// an environment, set up or remove image automation) unless the caller is a maintainer or an
// admin (R13.1): a developer deploys apps into what maintainers set up.
func (h *Handler) mayChangeFlux(sc *reqScope, what string) error {
	if sc.Principal != nil && sc.Principal.Admin || sc.Role >= policy.Maintainer {
		return nil
	}
	return &policy.Denied{Action: bootstrapAction, Resource: sc.target().Describe(),
		Required: "project role maintainer or higher to " + what, Have: sc.subject().Describe(sc.target())}
}

// mayBootstrap is mayChangeFlux for a first deploy into an environment without Flux objects.
func (h *Handler) mayBootstrap(sc *reqScope) error {
	err := h.mayChangeFlux(sc, "bootstrap it")
	var d *policy.Denied
	if errors.As(err, &d) {
		d.Required = fmt.Sprintf("project role maintainer or higher: environment %s has no Flux objects yet, and a maintainer must bootstrap it (POST /api/v1/projects/%s/environments/%s/bootstrap, or a maintainer's first deploy)",
			sc.Env.Name, sc.Project.Slug, sc.Env.Name)
	}
	return err
}
