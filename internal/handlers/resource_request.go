package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxResourceBody bounds a resource request body (a HelmRelease's values can be large).
const maxResourceBody = 1 << 20 // 1 MiB

var objectNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// errEmptyBody is readJSON's answer to a request without a body.
var errEmptyBody = errBadRequest("body", "a JSON object is required")

// readJSON decodes a JSON request body into v, strictly: unknown keys and trailing data are a
// 400 naming the field.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxResourceBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return &httpError{Status: http.StatusRequestEntityTooLarge, Msg: fmt.Sprintf("body larger than %d bytes", maxResourceBody)}
		case errors.As(err, &te) && te.Field != "":
			return errBadRequest(te.Field, "must be a JSON %s, got %s", te.Type.Kind(), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errBadRequest(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		case errors.Is(err, io.EOF):
			return errEmptyBody
		}
		return errBadRequest("body", "invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errBadRequest("body", "must be a single JSON object")
	}
	return nil
}

// specError turns a fluxspec validation error into a 400 naming the field.
func specError(err error) error {
	var fe *fluxspec.FieldError
	if errors.As(err, &fe) {
		return errBadRequest(fe.Field, "%s", fe.Msg)
	}
	return err
}

// checkCluster checks that fluxbridge can manage objects in the named cluster.
func (h *Handler) checkCluster(field, name string) error {
	if h.clusters == nil {
		return errBadRequest(field, "no clusters are configured")
	}
	_, err := h.clusters.Get(name)
	switch {
	case errors.Is(err, cluster.ErrUnknown):
		return errBadRequest(field, "unknown cluster %q", name)
	case errors.Is(err, cluster.ErrNoKubeconfig):
		return errBadRequest(field, "cluster %q has no kubeconfig: fluxbridge only receives its webhooks and cannot manage objects there", name)
	}
	return err
}

// checkDependencies rejects dependsOn references to objects fluxbridge does not manage in the
// cluster, and cycles, naming the cycle. replacing is the resource being changed (0 for a new
// one).
func (h *Handler) checkDependencies(ctx context.Context, db store.DBTX, clusterName, namespace, name string, spec fluxspec.Spec) error {
	deps := spec.Dependencies(namespace)
	if len(deps) == 0 {
		return nil
	}
	g, err := h.dependencyGraph(ctx, db, clusterName, spec.Kind())
	if err != nil {
		return err
	}
	self := fluxspec.Ref{Kind: spec.Kind(), Namespace: namespace, Name: name}
	if err := fluxspec.CheckDependencies(g, self, deps); err != nil {
		return specError(err)
	}
	return nil
}

// dependencyGraph reads the dependsOn graph of one kind in one cluster from the resources'
// configs.
func (h *Handler) dependencyGraph(ctx context.Context, db store.DBTX, clusterName, kind string) (fluxspec.Graph, error) {
	all, err := h.store.ResourcesByRefs(ctx, db, clusterName, kind)
	if err != nil {
		return nil, err
	}
	g := fluxspec.Graph{}
	for _, r := range all {
		ref := fluxspec.Ref{Kind: kind, Namespace: r.Namespace, Name: r.Name}
		g[ref] = nil
		if spec, err := fluxspec.Decode(kind, r.Config); err == nil {
			g[ref] = spec.Dependencies(r.Namespace)
		}
	}
	return g, nil
}

// dependents lists the resources whose dependsOn names res, which deleting res would block.
func (h *Handler) dependents(ctx context.Context, db store.DBTX, res *store.Resource) ([]string, error) {
	if !fluxspec.IsApplier(res.Kind) {
		return nil, nil
	}
	g, err := h.dependencyGraph(ctx, db, res.Cluster, res.Kind)
	if err != nil {
		return nil, err
	}
	self := fluxspec.Ref{Kind: res.Kind, Namespace: res.Namespace, Name: res.Name}
	var out []string
	for ref, deps := range g {
		for _, d := range deps {
			if d == self {
				out = append(out, ref.String())
			}
		}
	}
	return out, nil
}

// compactJSON normalises a config document for storage; an absent config is {}.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return json.RawMessage(`{}`)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// authorizeEnv checks the caller's permission for the route's action in environment env: the
// route names no {env}, so the scope could not check the environment's deploy permission
// (R13.2) for a resource that belongs to one. Nil env (a project-wide resource) passes.
func (h *Handler) authorizeEnv(ctx context.Context, db store.DBTX, sc *reqScope, env *store.Environment) error {
	if env == nil || sc.Principal == nil {
		return nil
	}
	cfg, err := policy.ParseEnvConfig(env.GitopsConfig)
	if err != nil {
		return errConflict("environment %q has invalid access settings (%v); an admin must repair its gitops_config", env.Name, err)
	}
	t := sc.target()
	t.Env = &policy.Env{Name: env.Name, Kind: env.Kind, Config: cfg}
	return policy.Authorize(sc.Action, sc.subject(), t)
}

// authorizeResource is authorizeEnv for the environment of res, if any.
func (h *Handler) authorizeResource(ctx context.Context, db store.DBTX, sc *reqScope, res *store.Resource) error {
	if res.EnvironmentID == nil || sc.Env != nil && sc.Env.ID == *res.EnvironmentID {
		return nil
	}
	env, err := h.store.EnvironmentByID(ctx, db, *res.EnvironmentID)
	if err != nil {
		return err
	}
	return h.authorizeEnv(ctx, db, sc, env)
}

// submitJob inserts the job of a change to a resource, or holds it for approval when the gate
// requires approvals (the strictest environment that reads the resource; prod: two, by
// default; R8.4). It returns the approval request's ID when the job is held; the caller has
// stored the change as the resource's proposal and attaches it to the request.
func (h *Handler) submitJob(ctx context.Context, tx pgx.Tx, sc *reqScope, gate *approvalGate, res *store.Resource, summary string, args river.JobArgs) (*int64, error) {
	sub := approval.Submission{
		ProjectID: res.ProjectID, EnvironmentID: res.EnvironmentID, Action: sc.Action,
		TargetType: approval.TargetResource, TargetID: res.ID, Summary: summary, Args: args,
	}
	if sc.Principal != nil {
		sub.RequestedBy = sc.Principal.UserID
	}
	if gate.Held() {
		sub.Required, sub.TTL = gate.Required, gate.TTL
		sub.EnvironmentID = &gate.Env.ID
		if res.EnvironmentID == nil || *res.EnvironmentID != gate.Env.ID {
			sub.Summary += fmt.Sprintf(" (read by environment %s, which requires %d approvals)", gate.Env.Name, gate.Required)
		}
	}
	s, err := h.approvals.Submit(ctx, tx, sub)
	if errors.Is(err, approval.ErrPendingExists) {
		return nil, errConflict("%v", err)
	}
	if err != nil {
		return nil, err
	}
	if s.Request == nil {
		return nil, nil
	}
	if err := h.store.AttachProposals(ctx, tx, s.Request.ID, []int64{res.ID}); err != nil {
		return nil, err
	}
	return &s.Request.ID, nil
}

// envOf returns the environment of res, or nil.
func (h *Handler) envOf(ctx context.Context, db store.DBTX, res *store.Resource) (*store.Environment, error) {
	if res.EnvironmentID == nil {
		return nil, nil
	}
	return h.store.EnvironmentByID(ctx, db, *res.EnvironmentID)
}
