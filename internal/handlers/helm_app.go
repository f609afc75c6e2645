package handlers

import (
	"context"
	"encoding/json"
	"path"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// helmApp is what a helm-app deploy makes of its template's HelmRelease (R7b.3): the chart's
// source and the HelmRelease installing the chart as release <app> into the deploy's
// namespace, both named <project>-<environment>-<app> in flux-system. A chart in the
// environment's own branch is read through the environment's GitRepository, and has no source
// of its own.
type helmApp struct {
	source  *appObject // nil: the environment's GitRepository
	release *appObject
	// stale are the objects of the app the deploy removes: a source of the other kind, or for
	// an app that is no longer a helm-app, its HelmRelease and source.
	stale []store.ObjectRef
}

// helmRefs are the objects a helm-app named name may have in cluster.
func helmRefs(cluster, name string) (release, helmRepo, gitRepo store.ObjectRef) {
	at := func(kind string) store.ObjectRef {
		return store.ObjectRef{Cluster: cluster, Kind: kind, Namespace: fluxNamespace, Name: name}
	}
	return at(fluxspec.KindHelmRelease), at(fluxspec.KindHelmRepository), at(fluxspec.KindGitRepository)
}

// planHelmApp works out a deploy's helm-app objects without writing: their configs, and the
// rows the cluster has. A deploy of another kind plans the removal of the app's HelmRelease
// and chart source, if it had them. db is the deploy's transaction (rows stay locked) or the
// pool (a preview).
func (h *Handler) planHelmApp(ctx context.Context, db store.DBTX, sc *reqScope, t *deployTarget, ef *envFlux, q *gitopsDeployReq) (*helmApp, error) {
	name := imageAutomationName(sc, q.Form.App)
	relRef, helmRef, gitRef := helmRefs(sc.Env.Cluster, name)
	if q.Kind != manifest.KindHelmApp {
		return &helmApp{stale: []store.ObjectRef{relRef, helmRef, gitRef}}, nil
	}
	ht := q.Flux.HelmRelease
	out := &helmApp{}
	srcRef := fluxspec.SourceRef{Kind: ht.SourceKind(), Name: name}
	if ns, n, ok := ef.ownChartSource(t, ht); ok {
		if g := ht.Chart.Source.GitRepository; g.Interval != "" || g.Timeout != "" {
			return nil, errBadRequest("flux.helmRelease.chart.source.gitRepository.interval",
				"the chart is in branch %s of %s, which the environment's GitRepository %s/%s reads: its interval is the environment's (flux.gitRepository); leave interval and timeout out", t.branch, t.repo.Name, ns, n)
		}
		srcRef.Name = n
		if ns != fluxNamespace {
			srcRef.Namespace = ns
		}
		out.stale = []store.ObjectRef{helmRef, gitRef}
	} else {
		src := ht.SourceConfig()
		o := &appObject{ref: helmRef}
		out.stale = []store.ObjectRef{gitRef}
		if gc, ok := src.(*fluxspec.GitRepositoryConfig); ok {
			o.ref, out.stale = gitRef, []store.ObjectRef{helmRef}
			if gc.URL == "" || gitops.SameRepository(gc.URL, t.repo.URL) {
				// The environment's repository, with its credentials in the Secret the apply
				// job writes.
				gc.URL, o.repoID = "", &t.repo.ID
				if t.repo.CredentialRef != "" {
					gc.SecretRef = fluxspec.AuthSecretName(name)
				}
			}
		}
		cfg, err := validConfig(o.ref.Kind, src)
		if err != nil {
			return nil, specError(err)
		}
		o.cfg = cfg
		if err := h.findAppObject(ctx, db, o); err != nil {
			return nil, err
		}
		out.source = o
	}
	rc := ht.ReleaseConfig(srcRef, q.Form.App, t.namespace)
	cfg, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	spec, err := fluxspec.Decode(fluxspec.KindHelmRelease, cfg)
	if err != nil {
		return nil, specError(err)
	}
	if err := h.checkConfinement(ctx, db, sc.Project, sc.Env, fluxNamespace, spec); err != nil {
		return nil, err
	}
	out.release = &appObject{ref: relRef, cfg: cfg, repoID: &t.repo.ID}
	if err := h.findAppObject(ctx, db, out.release); err != nil {
		return nil, err
	}
	return out, nil
}

// ownChartSource tells whether a Git chart comes from the branch the environment's
// GitRepository reads (the environment's repository, no other ref), and names that
// GitRepository.
func (f *envFlux) ownChartSource(t *deployTarget, ht *fluxspec.HelmReleaseTemplate) (namespace, name string, ok bool) {
	g := ht.Chart.Source.GitRepository
	if g == nil || g.URL != "" && !gitops.SameRepository(g.URL, t.repo.URL) {
		return "", "", false
	}
	if r := g.Ref; r != nil && *r != (fluxspec.GitRef{}) && *r != (fluxspec.GitRef{Branch: t.branch}) {
		return "", "", false
	}
	k := f.kust
	var raw json.RawMessage
	var kns string
	switch {
	case k != nil:
		raw, kns = k.Config, k.Namespace
	case f.newKust != nil:
		raw, kns = f.newKust.Config, f.newKust.Namespace
	default:
		return "", "", false
	}
	spec, err := fluxspec.Decode(fluxspec.KindKustomization, raw)
	if err != nil {
		return "", "", false
	}
	kc := spec.(*fluxspec.KustomizationConfig)
	if kc.SourceRef.Kind != fluxspec.KindGitRepository {
		return "", "", false
	}
	ns := kc.SourceRef.Namespace
	if ns == "" {
		ns = kns
	}
	return ns, kc.SourceRef.Name, true
}

// syncHelmApp makes the app's helm-app objects match the plan in tx, removing the stale ones,
// and returns the objects whose apply the deploy's job carries (source first).
func (h *Handler) syncHelmApp(ctx context.Context, tx pgx.Tx, sc *reqScope, p *helmApp, app string, held bool) ([]*store.Resource, error) {
	if err := h.deleteAppObjects(ctx, tx, sc, p.stale, held, "template", "the Helm release of "+app+" (deploy it with the helm-app template to keep it)"); err != nil {
		return nil, err
	}
	var apply []*store.Resource
	for _, o := range []*appObject{p.source, p.release} {
		if o == nil {
			continue
		}
		res, carry, err := h.syncAppObject(ctx, tx, sc, o, held, "flux.helmRelease", "the Helm release of "+app)
		if err != nil {
			return nil, err
		}
		o.id = res.ID
		if carry {
			apply = append(apply, res)
		}
	}
	return apply, nil
}

// views shows the helm-app's objects as the deploy finds or makes them; withYAML renders them.
func (p *helmApp) views(sc *reqScope, t *deployTarget, withYAML bool) (release, source *fluxObjectView) {
	show := func(o *appObject) *fluxObjectView {
		if o == nil {
			return nil
		}
		nr := &store.NewResource{ProjectID: sc.Project.ID, EnvironmentID: &sc.Env.ID, RepositoryID: o.repoID, Cluster: o.ref.Cluster,
			Kind: o.ref.Kind, Namespace: o.ref.Namespace, Name: o.ref.Name, Config: o.cfg}
		v := fluxObjectView{Kind: o.ref.Kind, Name: o.ref.Name, Namespace: o.ref.Namespace, Config: o.cfg}
		id := o.id
		if o.row != nil {
			id = o.row.ID
		}
		v.ID, v.Created, v.Changed = id, o.row == nil, o.row != nil && !sameJSON(o.row.Config, o.cfg)
		if withYAML {
			v.YAML = objectYAML(sc, t, nr, id)
		}
		return &v
	}
	return show(p.release), show(p.source)
}

// chartLabel names the chart for a person: "podinfo 6.x from https://…".
func chartLabel(ht *fluxspec.HelmReleaseTemplate) string {
	c := ht.Chart
	s := c.Chart
	if c.Version != "" {
		s += " " + c.Version
	}
	switch {
	case c.Source.HelmRepository != nil:
		s += " from " + c.Source.HelmRepository.URL
	case c.Source.GitRepository != nil && c.Source.GitRepository.URL != "":
		s += " from " + c.Source.GitRepository.URL
	default:
		s = path.Clean(s) + " in the environment's repository"
	}
	return s
}
