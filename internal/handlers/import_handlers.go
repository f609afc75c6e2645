package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// listDiscovered lists the Flux objects of a managed cluster that no project manages, as the
// watch last saw them (GET /api/v1/clusters/{cluster}/discovered, admins): what teams that
// already run Flux import from.
// Paged by ?after=kind/namespace/name.
func (h *Handler) listDiscovered(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "cluster")
	if err := h.checkCluster("cluster", name); err != nil {
		h.fail(w, r, &httpError{Status: http.StatusNotFound, Field: "cluster", Msg: err.Error()})
		return
	}
	p := params{r: r}
	after, limit := p.afterRef(false), p.limit()
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	items, err := h.store.ListDiscovered(r.Context(), h.store.Pool(), name, after, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageAfter(items, limit, func(d store.Discovered) string { return refCursor(d.Ref(), false) }))
}

// importReq is the body of POST /projects/{project}/resources/import: a discovered object and
// where it goes in the project.
type importReq struct {
	Cluster      string `json:"cluster"`
	Kind         string `json:"kind"`
	Namespace    string `json:"namespace"`
	Name         string `json:"name"`
	Environment  string `json:"environment,omitempty"`
	RepositoryID *int64 `json:"repository_id,omitempty"`
}

// importResp is the imported resource and the spec fields its config has no key for.
type importResp struct {
	store.Resource
	IgnoredFields []string `json:"ignored_fields"`
	Owner         string   `json:"previous_owner"`
}

// importResource adopts an object that exists in a managed cluster and that no project
// manages (an admin's action, audited): its config is read off the live spec, the row is
// recorded as applied at it, and a job stamps fluxbridge's labels and annotations on the object.
// From then on it is managed like any other resource: changes go through the approval gate,
// its events record deployments. `flux bootstrap`'s own objects can come in only this way.
func (h *Handler) importResource(w http.ResponseWriter, r *http.Request) {
	var q importReq
	if err := readJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	var out importResp
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		sc := scopeOf(r)
		if err := h.checkCluster("cluster", q.Cluster); err != nil {
			return nil, err
		}
		ref := store.ObjectRef{Cluster: q.Cluster, Kind: q.Kind, Namespace: q.Namespace, Name: q.Name}
		d, err := h.store.DiscoveredByRef(ctx, tx, ref)
		if errors.Is(err, store.ErrNotFound) {
			if _, err := h.store.LockResourceByRef(ctx, tx, ref); err == nil {
				return nil, errConflict("%s is already managed by fluxbridge", ref)
			}
			return nil, errNotFound("%s is not among the objects the watch discovered in cluster %s (GET /api/v1/clusters/%s/discovered)", ref, q.Cluster, q.Cluster)
		}
		if err != nil {
			return nil, err
		}
		var spec map[string]any
		if err := json.Unmarshal(d.Spec, &spec); err != nil {
			return nil, err
		}
		imp, err := fluxspec.FromSpec(q.Kind, spec)
		if err != nil {
			var fe *fluxspec.FieldError
			if errors.As(err, &fe) {
				return nil, errBadRequest(fe.Field, "the live object cannot be imported: %s", fe.Msg)
			}
			return nil, err
		}
		var env *store.Environment
		if q.Environment != "" {
			if env, err = h.store.EnvironmentByName(ctx, tx, sc.Project.ID, q.Environment); err != nil {
				return nil, errBadRequest("environment", "no environment %q in this project", q.Environment)
			}
			if env.Cluster != q.Cluster {
				return nil, errBadRequest("environment", "environment %s is in cluster %s, not %s", env.Name, env.Cluster, q.Cluster)
			}
		} else if fluxspec.IsApplier(q.Kind) {
			return nil, errBadRequest("environment", "a %s deploys into an environment: name it", q.Kind)
		}
		var repo *store.Repository
		if q.RepositoryID != nil {
			if repo, err = h.store.RepositoryByID(ctx, tx, *q.RepositoryID); err != nil || repo.ProjectID != sc.Project.ID {
				return nil, errBadRequest("repository_id", "no repository %d in this project", *q.RepositoryID)
			}
		}
		s, _ := fluxspec.Decode(q.Kind, imp.Config)
		if err := h.checkCredentials(s, q.Name, repo); err != nil {
			return nil, err
		}
		nr := store.NewResource{ProjectID: sc.Project.ID, RepositoryID: q.RepositoryID, Cluster: q.Cluster,
			Kind: q.Kind, Namespace: q.Namespace, Name: q.Name, Config: imp.Config, ImportedBy: &sc.Principal.UserID}
		if env != nil {
			nr.EnvironmentID = &env.ID
		}
		res, err := h.store.CreateResource(ctx, tx, nr)
		if _, dup := store.IsUniqueViolation(err); dup {
			return nil, errConflict("%s is already managed by fluxbridge", ref)
		}
		if err != nil {
			return nil, err
		}
		if imp.Suspend {
			if _, err := h.store.SetResourceSuspended(ctx, tx, res.ID, true); err != nil {
				return nil, err
			}
		}
		if err := h.store.DeleteDiscovered(ctx, tx, ref); err != nil {
			return nil, err
		}
		if _, err := h.river.InsertTx(ctx, tx, jobs.MarkResourceArgs{ResourceID: res.ID}, nil); err != nil {
			return nil, fmt.Errorf("enqueue marking of %s: %w", ref, err)
		}
		if res, err = h.store.ResourceByID(ctx, tx, res.ID); err != nil {
			return nil, err
		}
		out = importResp{Resource: *res, IgnoredFields: imp.Ignored, Owner: d.Owner}
		if out.IgnoredFields == nil {
			out.IgnoredFields = []string{}
		}
		ch := resourceChange(res, nil, res.Config, "imported")
		ch.Details = map[string]any{"previous_owner": d.Owner, "uid": d.UID, "ignored_fields": out.IgnoredFields}
		return ch, nil
	}) {
		return
	}
	writeJSON(w, http.StatusCreated, out)
}
