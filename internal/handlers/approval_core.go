package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// inboxLimit bounds the requests an inbox lists.
const inboxLimit = 200

// ApprovalView is an approval request with its votes.
type ApprovalView = approvalView

// InboxItem is a pending approval request that waits on the principal.
type InboxItem struct {
	ApprovalView
	Project   *store.Project
	Env       *store.Environment
	Requester string
}

// ApprovalInbox returns the pending requests, across the principal's projects, that wait on
// them: the policy lets their role approve there, someone else asked for the change, and they
// have not voted yet. Newest first.
func (h *Handler) ApprovalInbox(ctx context.Context, p *auth.Principal) ([]InboxItem, error) {
	if p == nil {
		return nil, nil
	}
	reqs, err := h.store.PendingApprovalsFor(ctx, h.store.Pool(), p.UserID, p.Admin, inboxLimit)
	if err != nil {
		return nil, err
	}
	return h.inboxItems(ctx, p, reqs)
}

// ExpiredInbox returns the requests that expired in the last week while waiting on the
// principal, as ApprovalInbox would have listed them.
func (h *Handler) ExpiredInbox(ctx context.Context, p *auth.Principal) ([]InboxItem, error) {
	if p == nil {
		return nil, nil
	}
	reqs, err := h.store.ExpiredApprovalsFor(ctx, h.store.Pool(), p.UserID, p.Admin, inboxLimit)
	if err != nil {
		return nil, err
	}
	return h.inboxItems(ctx, p, reqs)
}

// inboxItems attaches votes, project, environment and requester to reqs and keeps those the
// principal's role may approve.
func (h *Handler) inboxItems(ctx context.Context, p *auth.Principal, reqs []store.ApprovalRequest) ([]InboxItem, error) {
	db := h.store.Pool()
	views, err := h.viewApprovals(ctx, db, reqs)
	if err != nil {
		return nil, err
	}
	projects := map[int64]*store.Project{}
	roles := map[int64]policy.Role{}
	users := map[int64]string{}
	out := make([]InboxItem, 0, len(views))
	for _, v := range views {
		pr, ok := projects[v.ProjectID]
		if !ok {
			if pr, err = h.store.ProjectByID(ctx, db, v.ProjectID); err != nil {
				return nil, err
			}
			role, err := h.store.MemberRole(ctx, db, v.ProjectID, p.UserID)
			if err != nil {
				return nil, err
			}
			projects[v.ProjectID] = pr
			roles[v.ProjectID], _ = policy.ParseRole(role)
		}
		sc := &reqScope{Principal: p, Role: roles[v.ProjectID], Project: pr}
		it := InboxItem{ApprovalView: v, Project: pr}
		if v.EnvironmentID != nil {
			if it.Env, err = h.store.EnvironmentByID(ctx, db, *v.EnvironmentID); err != nil {
				return nil, err
			}
		}
		if h.Can(sc, policy.ApproveAction, it.Env) != nil {
			continue
		}
		name, ok := users[v.RequestedBy]
		if !ok {
			if u, err := h.store.UserByID(ctx, db, v.RequestedBy); err == nil {
				name = u.Username
			} else if !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			users[v.RequestedBy] = name
		}
		it.Requester = name
		out = append(out, it)
	}
	return out, nil
}

// Change is one field a held change sets: its path in the form or config, the value it has
// now ("" when new) and the value it will have ("" when removed).
type Change struct {
	Field, Old, New string
}

// ApprovalDetail is an approval request as its page shows it: the request and votes, who asked,
// the environment, what it will change, and whether the principal may vote and why not.
type ApprovalDetail struct {
	ApprovalView
	Env       *store.Environment
	Requester string
	// Target names what the change applies to ("deployment 12 of shop", "Kustomization …").
	Target string
	// Changes are the fields the held change sets, against what is live (the last pushed form
	// of the app, or the resource's config). Empty when nothing is recorded to compare.
	Changes []Change
	// CanApprove and CanReject are nil when the principal may; otherwise the reason why not.
	CanApprove, CanReject error
}

// Approval returns approval request id of the scoped project with what it will change.
func (h *Handler) Approval(r *http.Request, id int64) (*ApprovalDetail, error) {
	ctx, db := r.Context(), h.store.Pool()
	v, err := h.approvalByID(r, id)
	if err != nil {
		return nil, err
	}
	sc := scopeOf(r)
	d := &ApprovalDetail{ApprovalView: *v}
	if v.EnvironmentID != nil {
		if d.Env, err = h.store.EnvironmentByID(ctx, db, *v.EnvironmentID); err != nil {
			return nil, err
		}
	}
	if u, err := h.store.UserByID(ctx, db, v.RequestedBy); err == nil {
		d.Requester = u.Username
	}
	if d.Changes, d.Target, err = h.heldChanges(ctx, v.ApprovalRequest); err != nil {
		return nil, err
	}
	d.CanApprove = h.Can(sc, policy.ApproveAction, d.Env)
	d.CanReject = h.Can(sc, "approval.reject", d.Env)
	switch {
	case v.State != store.ApprovalPending:
		d.CanApprove = fmt.Errorf("the request is %s", v.State)
		d.CanReject = d.CanApprove
	case d.CanApprove != nil:
		// The policy's reason comes first: the role cannot approve here at all.
	case v.RequestedBy == sc.Principal.UserID:
		d.CanApprove = fmt.Errorf("%w; it needs %d approvals from other people", approval.ErrSelfApproval, v.RequiredApprovals)
	case slices.ContainsFunc(v.Votes, func(vt store.Vote) bool { return vt.UserID == sc.Principal.UserID }):
		d.CanApprove = errors.New("you have voted on it")
	}
	return d, nil
}

// heldChanges compares what a request holds with what is live.
func (h *Handler) heldChanges(ctx context.Context, req *store.ApprovalRequest) ([]Change, string, error) {
	db := h.store.Pool()
	switch req.TargetType {
	case approval.TargetDeployment:
		spec, err := h.store.DeploymentSpecByID(ctx, db, req.TargetID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Sprintf("deployment %d", req.TargetID), nil
		}
		if err != nil {
			return nil, "", err
		}
		var before json.RawMessage
		prev, err := h.store.LastPushedSpec(ctx, db, spec.RepositoryID, spec.Branch, spec.Path, spec.DeploymentID)
		switch {
		case err == nil:
			before = prev.Form
		case !errors.Is(err, store.ErrNotFound):
			return nil, "", err
		}
		ch, err := jsonChanges(before, spec.Form)
		return ch, fmt.Sprintf("deployment %d: %s on branch %s", req.TargetID, spec.Path, spec.Branch), err
	case approval.TargetResource:
		res, err := h.store.ResourceByID(ctx, db, req.TargetID)
		if err != nil {
			return nil, "", err
		}
		target := fmt.Sprintf("%s %s/%s in cluster %s", res.Kind, res.Namespace, res.Name, res.Cluster)
		var p store.Proposal
		if len(res.Pending) == 0 || string(res.Pending) == "null" {
			return nil, target, nil
		}
		if err := json.Unmarshal(res.Pending, &p); err != nil {
			return nil, "", fmt.Errorf("read the proposal of resource %d: %w", res.ID, err)
		}
		if p.Delete {
			return []Change{{Field: "(the object)", Old: "exists", New: "deleted"}}, target, nil
		}
		ch, err := jsonChanges(res.Config, p.Config)
		return ch, target, err
	case approval.TargetEnvironment:
		env, err := h.store.EnvironmentByID(ctx, db, req.TargetID)
		if err != nil {
			return nil, "", err
		}
		target := fmt.Sprintf("the settings of environment %s", env.Name)
		var args struct {
			Patch json.RawMessage `json:"patch"`
		}
		if err := json.Unmarshal(req.JobArgs, &args); err != nil || len(args.Patch) == 0 {
			return nil, target, nil
		}
		merged, err := policy.MergeConfig(env.GitopsConfig, args.Patch)
		if err != nil {
			return nil, target, nil
		}
		ch, err := jsonChanges(env.GitopsConfig, merged)
		return ch, target, err
	}
	return nil, fmt.Sprintf("%s %d", req.TargetType, req.TargetID), nil
}

// Changes lists the leaves of two JSON objects that differ, by their dotted paths: an audit
// row's before and after as a person reads them.
func Changes(before, after json.RawMessage) ([]Change, error) { return jsonChanges(before, after) }

// jsonChanges lists the leaves of two JSON objects that differ, by their dotted paths.
func jsonChanges(before, after json.RawMessage) ([]Change, error) {
	flat := func(raw json.RawMessage) (map[string]string, error) {
		out := map[string]string{}
		if len(raw) == 0 || string(raw) == "null" {
			return out, nil
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		flatten("", v, out)
		return out, nil
	}
	a, err := flat(before)
	if err != nil {
		return nil, err
	}
	b, err := flat(after)
	if err != nil {
		return nil, err
	}
	var out []Change
	for k, nv := range b {
		if ov, ok := a[k]; !ok || ov != nv {
			out = append(out, Change{Field: k, Old: a[k], New: nv})
		}
	}
	for k, ov := range a {
		if _, ok := b[k]; !ok {
			out = append(out, Change{Field: k, Old: ov})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out, nil
}

func flatten(prefix string, v any, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			flatten(join(k), x, out)
		}
	case []any:
		for i, x := range t {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	default:
		b, _ := json.Marshal(t)
		s := string(b)
		if str, ok := t.(string); ok {
			s = str
		}
		out[prefix] = s
	}
}
