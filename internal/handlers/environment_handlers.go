package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

var envKinds = []string{policy.KindDev, policy.KindTest, policy.KindStaging, policy.KindProd}

// envAccess is an environment's effective access settings, defaults filled in.
type envAccess struct {
	DeployRoles       []string `json:"deploy_roles"`
	DeployUsers       []string `json:"deploy_users"`
	RequiredApprovals int      `json:"required_approvals"`
	ApprovalTTL       string   `json:"approval_ttl"` // "0s" for never
}

// envView is an environment with its effective access settings.
type envView struct {
	*store.Environment
	Access envAccess `json:"access"`
}

func viewEnv(e *store.Environment, c policy.EnvConfig) envView {
	v := envView{Environment: e, Access: envAccess{DeployUsers: c.DeployUsers, RequiredApprovals: c.Approvals(e.Kind), ApprovalTTL: c.TTL().String()}}
	for _, r := range c.Deployers(e.Kind) {
		v.Access.DeployRoles = append(v.Access.DeployRoles, r.String())
	}
	if v.Access.DeployUsers == nil {
		v.Access.DeployUsers = []string{}
	}
	return v
}

func (h *Handler) getEnvironment(w http.ResponseWriter, r *http.Request) {
	sc := scopeOf(r)
	writeJSON(w, http.StatusOK, viewEnv(sc.Env, sc.EnvConfig))
}

// createEnvironmentReq is the body of POST /projects/{project}/environments.
type createEnvironmentReq struct {
	Name         string          `json:"name"`
	Kind         string          `json:"kind"`
	Cluster      string          `json:"cluster"`
	GitopsConfig json.RawMessage `json:"gitops_config"`
}

// Validate checks the fields and the access settings. A new environment may not start with
// fewer approvals than its kind's default: otherwise one maintainer could create a second
// "prod" without the two-person rule and deploy through it. Lowering them afterwards is a
// change that itself needs the approvals.
func (q *createEnvironmentReq) Validate(clusters map[string][]byte) (policy.EnvConfig, error) {
	var cfg policy.EnvConfig
	if !dnsLabelRE.MatchString(q.Name) {
		return cfg, errBadRequest("name", "must be a DNS label: 1-63 lowercase letters, digits or '-'")
	}
	if !slices.Contains(envKinds, q.Kind) {
		return cfg, errBadRequest("kind", "must be one of %s, got %q", strings.Join(envKinds, ", "), q.Kind)
	}
	if !dnsLabelRE.MatchString(q.Cluster) {
		return cfg, errBadRequest("cluster", "must be the name of a configured cluster")
	}
	if _, ok := clusters[q.Cluster]; len(clusters) > 0 && !ok {
		return cfg, errBadRequest("cluster", "no cluster %q is configured", q.Cluster)
	}
	if len(bytes.TrimSpace(q.GitopsConfig)) == 0 || string(q.GitopsConfig) == "null" {
		q.GitopsConfig = json.RawMessage(`{}`)
	}
	if q.GitopsConfig[0] != '{' {
		return cfg, errBadRequest("gitops_config", "must be a JSON object")
	}
	cfg, err := policy.ParseEnvConfig(q.GitopsConfig)
	if err != nil {
		return cfg, err
	}
	if min := policy.DefaultApprovals(q.Kind); cfg.Approvals(q.Kind) < min {
		return cfg, errBadRequest("gitops_config.requiredApprovals",
			"a new %s environment needs at least %d approvals; lower it later with an approved change", q.Kind, min)
	}
	return cfg, nil
}

// createEnvironment adds an environment to the project (maintainer and up).
func (h *Handler) createEnvironment(w http.ResponseWriter, r *http.Request) {
	var q createEnvironmentReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	cfg, err := q.Validate(h.tokens)
	if err == nil {
		_, err = fluxspec.ParseEnvSettings(q.GitopsConfig)
		err = specError(err)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	var e *store.Environment
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		if err := h.checkEnvIsolation(ctx, tx, sc.Project, store.Environment{
			ProjectID: sc.Project.ID, Name: q.Name, Kind: q.Kind, Cluster: q.Cluster, GitopsConfig: q.GitopsConfig,
		}); err != nil {
			return nil, err
		}
		var err error
		e, err = h.store.CreateEnvironment(ctx, tx, store.Environment{
			ProjectID: sc.Project.ID, Name: q.Name, Kind: q.Kind, Cluster: q.Cluster, GitopsConfig: q.GitopsConfig,
		})
		if _, dup := store.IsUniqueViolation(err); dup {
			return nil, errConflict("project %s already has an environment %q", sc.Project.Slug, q.Name)
		}
		if err != nil {
			return nil, err
		}
		return &auditChange{TargetType: "environment", TargetID: e.ID, After: e, EnvironmentID: &e.ID,
			Message: "created " + e.Kind + " environment " + e.Name}, nil
	}) {
		return
	}
	writeJSON(w, http.StatusCreated, viewEnv(e, cfg))
}

// updateEnvironmentReq is the body of PATCH /projects/{project}/environments/{env}.
type updateEnvironmentReq struct {
	// GitopsConfig is a JSON merge patch (RFC 7396) of the environment's gitops_config.
	GitopsConfig json.RawMessage `json:"gitops_config"`
}

// updateEnvResp is the environment after the change, or, when the change waits for approval,
// as it still is, with the approval request.
type updateEnvResp struct {
	Environment envView         `json:"environment"`
	Approval    *approvalView   `json:"approval,omitempty"`
	Proposed    json.RawMessage `json:"proposed_gitops_config,omitempty"`
}

// updateEnvironment changes an environment's gitops_config (maintainer and up, with the
// environment's deploy permission). In an environment that requires approvals under its
// current settings, the change is held for approval (202) and applied by a job when approved:
// so the two-person rule cannot be switched off by one person.
func (h *Handler) updateEnvironment(w http.ResponseWriter, r *http.Request) {
	var q updateEnvironmentReq
	if err := decodeJSON(w, r, &q); err != nil {
		h.fail(w, r, err)
		return
	}
	resp, err := h.UpdateEnvironment(r, q.GitopsConfig)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if resp.Approval != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// EnvUpdate is an environment after a change of its settings, or as it still is with the
// approval request that holds the change.
type EnvUpdate = updateEnvResp

// EnvView is an environment with its access settings resolved.
type EnvView = envView

// ViewEnv resolves an environment's access settings.
func ViewEnv(e *store.Environment) (EnvView, error) {
	cfg, err := policy.ParseEnvConfig(e.GitopsConfig)
	return viewEnv(e, cfg), err
}

// UpdateEnvironment merges patch (RFC 7396) into the scoped environment's gitops_config. In an
// environment that requires approvals under its current settings, the change is held for
// approval and applied by a job when approved: so the two-person rule cannot be switched off
// by one person.
func (h *Handler) UpdateEnvironment(r *http.Request, patch json.RawMessage) (*EnvUpdate, error) {
	if p := bytes.TrimSpace(patch); len(p) == 0 || p[0] != '{' {
		return nil, errBadRequest("gitops_config", "must be a JSON object: a merge patch of the current gitops_config")
	}
	sc := scopeOf(r)
	var resp updateEnvResp
	err := h.mutateErr(r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		before, err := h.store.LockEnvironment(ctx, tx, sc.Env.ID)
		if err != nil {
			return nil, err
		}
		merged, err := policy.MergeConfig(before.GitopsConfig, patch)
		if err != nil {
			return nil, err
		}
		cfg, err := policy.ParseEnvConfig(merged)
		if err != nil {
			return nil, err
		}
		if _, err := fluxspec.ParseEnvSettings(merged); err != nil {
			return nil, specError(err)
		}
		changed := *before
		changed.GitopsConfig = merged
		if err := h.checkEnvIsolation(ctx, tx, sc.Project, changed); err != nil {
			return nil, err
		}
		g, err := h.gate(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		ch := &auditChange{TargetType: "environment", TargetID: before.ID, Before: before.GitopsConfig, After: merged}
		if !g.Held() {
			after, err := h.store.SetEnvironmentConfig(ctx, tx, before.ID, merged)
			if err != nil {
				return nil, err
			}
			if err := jobs.ReapplyIfSettingsChangedTx(ctx, h.river, tx, before, after); err != nil {
				return nil, err
			}
			resp.Environment = viewEnv(after, cfg)
			ch.Message = "changed gitops_config of environment " + before.Name
			return ch, nil
		}
		sub, err := g.Submit(ctx, tx, approval.TargetEnvironment, before.ID, "change gitops_config of environment "+before.Name,
			jobs.EnvironmentConfigArgs{EnvironmentID: before.ID, Patch: patch}, nil)
		if err != nil {
			return nil, err
		}
		resp.Environment, resp.Proposed = viewEnv(before, sc.EnvConfig), merged
		resp.Approval = &approvalView{ApprovalRequest: sub.Request, Votes: []store.Vote{}}
		ch.Message = "gitops_config change of environment " + before.Name + " held for approval"
		ch.Details = submittedDetails(sub)
		return ch, nil
	})
	if err != nil {
		return nil, err
	}
	return &resp, nil
}

// checkEnvIsolation refuses an environment as a create or change would leave it when it would
// share a namespace of its cluster, or files on a branch of a repository, with another
// environment of any project (409 naming both).
func (h *Handler) checkEnvIsolation(ctx context.Context, tx pgx.Tx, project *store.Project, env store.Environment) error {
	w, err := h.loadWorld(ctx, tx)
	if err != nil {
		return err
	}
	w.setEnv(project, env)
	return w.check(func(e *store.Environment) bool {
		return e.ProjectID == env.ProjectID && e.Name == env.Name
	})
}
