package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// liveTimeout bounds the apiserver calls of the live views.
const liveTimeout = 10 * time.Second

// ResourceDetailView is GET …/resources/{id}: the row, its latest reconcile request (the progress
// of a manual reconcile) and its latest history.
type ResourceDetailView struct {
	store.Resource
	Reconcile *store.ReconcileRequest `json:"reconcile"`
	History   []store.HistoryEntry    `json:"history"`
	// WaitingOn is the dependency Flux waits for before it applies this object
	// (DependencyNotReady), with that dependency's own status.
	WaitingOn *BlockingDependency `json:"waiting_on,omitempty"`
}

// detailHistory is how many history rows the detail view carries.
const detailHistory = 10

func (h *Handler) getResourceDetail(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	out, err := h.ResourceDetail(r, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// ResourceDetail is the typed core of GET …/resources/{id}, for the API and the console: one of
// the scoped project's resources with its latest reconcile request, history and blocking
// dependency.
func (h *Handler) ResourceDetail(r *http.Request, id int64) (*ResourceDetailView, error) {
	p := params{r: r}
	res, err := h.ownResource(r, &p, id)
	if err != nil {
		return nil, err
	}
	out := ResourceDetailView{Resource: *res}
	reqs, err := h.store.ListReconcileRequests(r.Context(), h.store.Pool(), res.ID, 0, 1)
	if err == nil && len(reqs) == 1 {
		out.Reconcile = &reqs[0]
	}
	if err == nil {
		out.History, err = h.store.ListHistory(r.Context(), h.store.Pool(), res.ID, 0, detailHistory)
	}
	if err == nil {
		out.WaitingOn, err = h.waitingOn(r.Context(), h.store.Pool(), res)
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// LiveYAML is the live object of one of the scoped project's resources as YAML without
// managedFields, read from its cluster.
func (h *Handler) LiveYAML(r *http.Request, id int64) ([]byte, error) {
	p := params{r: r}
	res, err := h.ownResource(r, &p, id)
	if err != nil {
		return nil, err
	}
	u, err := h.liveObject(r.Context(), res)
	if err != nil {
		return nil, err
	}
	return flux.LiveYAML(u)
}

// getResourceYAML shows the live object from its cluster as YAML without managedFields
// (?format=json for JSON). 404 when it is not in the cluster, 502 when the cluster does not
// answer.
func (h *Handler) getResourceYAML(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	format := p.oneOf("format", "yaml", "json")
	res, err := h.ownResource(r, &p, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.liveObject(r.Context(), res)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b, err := flux.LiveYAML(u)
	if err == nil && format == "json" {
		b, err = yaml.YAMLToJSON(b)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ct := "application/yaml; charset=utf-8"
	if format == "json" {
		ct = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// liveObject reads a resource's object from its cluster.
func (h *Handler) liveObject(ctx context.Context, res *store.Resource) (*unstructured.Unstructured, error) {
	if h.clusters == nil {
		return nil, errConflict("cluster %s is not managed by this fluxbridge (no clusters are configured)", res.Cluster)
	}
	cl, err := h.clusters.Get(res.Cluster)
	if err != nil {
		return nil, errConflict("cluster %s is not managed by this fluxbridge: %v", res.Cluster, err)
	}
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	// The client's REST mapper discovers API groups without the context (and one caller at a
	// time): against an apiserver that accepts and never answers, wait for the context only;
	// the call ends on its own within the client's timeout.
	type got struct {
		u   *unstructured.Unstructured
		err error
	}
	ch := make(chan got, 1)
	go func() {
		u, err := flux.Get(ctx, cl.Client, flux.Ref{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name})
		ch <- got{u, err}
	}()
	var u *unstructured.Unstructured
	select {
	case g := <-ch:
		u, err = g.u, g.err
	case <-ctx.Done():
		return nil, &httpError{Status: http.StatusBadGateway, Msg: fmt.Sprintf("cluster %s did not answer within %s", res.Cluster, liveTimeout)}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, errNotFound("%s %s/%s is not in cluster %s (apply status: %s)", res.Kind, res.Namespace, res.Name, res.Cluster, res.ApplyStatus)
	case err != nil:
		return nil, &httpError{Status: http.StatusBadGateway, Msg: fmt.Sprintf("cluster %s: %v", res.Cluster, err)}
	}
	return u, nil
}

// listHistory pages through a resource's reconciliation history, newest first.
func (h *Handler) listHistory(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	id := p.id("id")
	before, limit := p.int64("before"), p.limit()
	res, err := h.ownResource(r, &p, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items, err := h.store.ListHistory(r.Context(), h.store.Pool(), res.ID, before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf(items, limit, func(e store.HistoryEntry) int64 { return e.ID }))
}

// exportResources prints the live objects of the project's resources as `flux export` does: a
// multi-document YAML stream of apiVersion, kind, metadata and spec, by cluster, kind and name.
// Filters: ?cluster=, ?environment_id=, ?kind=. An object missing from its cluster, or a
// cluster that does not answer, becomes a comment, so the export of the rest still works.
func (h *Handler) exportResources(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	f := store.ResourceFilter{
		ProjectID: scopeOf(r).projectID(), EnvironmentID: p.int64("environment_id"),
		Cluster: p.str("cluster"), Kind: p.oneOf("kind", resourceKinds...),
	}
	if sc := scopeOf(r); sc.Env != nil {
		f.EnvironmentID = sc.Env.ID
	}
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	// An export is every matching object in one YAML stream: read page by page.
	list, err := h.store.AllResources(r.Context(), h.store.Pool(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := h.exportYAML(r.Context(), list)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(out)
}

// exportParallel bounds the live reads one export runs at once.
const exportParallel = 8

// exportYAML reads the live objects of list, exportParallel at a time and all within one
// liveTimeout (so an export of many objects in a cluster that is down ends in seconds, not
// once per object), and returns them as a YAML stream in list's order. An object that cannot
// be read is a comment saying why; a cluster that does not answer is asked once.
func (h *Handler) exportYAML(ctx context.Context, list []store.Resource) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, liveTimeout)
	defer cancel()
	parts := make([][]byte, len(list))
	var (
		mu   sync.Mutex
		down = map[string]string{} // cluster → why it could not be read
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(exportParallel)
	for i := range list {
		res := &list[i]
		if res.ApplyStatus == store.ApplyDeleting {
			continue
		}
		g.Go(func() error {
			mu.Lock()
			why, isDown := down[res.Cluster]
			mu.Unlock()
			if isDown {
				parts[i] = fmt.Appendf(nil, "---\n# %s %s/%s in cluster %s: %s\n", res.Kind, res.Namespace, res.Name, res.Cluster, why)
				return nil
			}
			u, err := h.liveObject(gctx, res)
			if err != nil {
				var he *httpError
				if !errors.As(err, &he) {
					return err
				}
				if he.Status == http.StatusBadGateway {
					mu.Lock()
					down[res.Cluster] = he.Msg
					mu.Unlock()
				}
				parts[i] = fmt.Appendf(nil, "---\n# %s %s/%s in cluster %s: %s\n", res.Kind, res.Namespace, res.Name, res.Cluster, he.Msg)
				return nil
			}
			b, err := yaml.Marshal(flux.Export(u).Object)
			if err != nil {
				return err
			}
			parts[i] = append(fmt.Appendf(nil, "---\n# cluster: %s\n", res.Cluster), b...)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return bytes.Join(parts, nil), nil
}
