package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Field limits of a deploy request.
const (
	maxAppLen      = 253 // a DNS subdomain, the longest Kubernetes object name
	maxRevisionLen = 200
	maxMessageLen  = 2000
)

// createDeploymentReq is the body of POST /projects/{project}/environments/{env}/deployments.
// Method selects the kind of deploy; each method has its own fields and validation.
type createDeploymentReq struct {
	Method   string `json:"method"`
	App      string `json:"app"`
	Revision string `json:"revision"`
	Message  string `json:"message"`
}

// Validate checks the method and its fields.
func (q *createDeploymentReq) Validate() error {
	switch q.Method {
	case store.MethodManual:
	case "":
		return errBadRequest("method", "is required; use %q or %q", store.MethodManual, store.MethodGitopsUI)
	case store.MethodGitopsGit:
		return errBadRequest("method", "%q deployments are recorded from Flux's events, not created here", q.Method)
	default:
		return errBadRequest("method", "must be %q or %q, got %q", store.MethodManual, store.MethodGitopsUI, q.Method)
	}
	q.App, q.Revision, q.Message = strings.TrimSpace(q.App), strings.TrimSpace(q.Revision), strings.TrimSpace(q.Message)
	if q.App == "" || len(q.App) > maxAppLen || !dnsSubdomain(q.App) {
		return errBadRequest("app", "must be a Kubernetes name: lowercase letters, digits, '-' and '.', at most %d characters", maxAppLen)
	}
	if q.Revision == "" || len(q.Revision) > maxRevisionLen || strings.IndexFunc(q.Revision, unicode.IsSpace) >= 0 || !printable(q.Revision) {
		return errBadRequest("revision", "must be a version, tag or commit without spaces, at most %d characters", maxRevisionLen)
	}
	if len(q.Message) > maxMessageLen || !printable(strings.ReplaceAll(q.Message, "\n", " ")) {
		return errBadRequest("message", "must be printable text of at most %d characters", maxMessageLen)
	}
	return nil
}

func dnsSubdomain(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if !dnsLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// deploymentResp is a created deployment, with the approval request holding it, if any.
type deploymentResp struct {
	Deployment *store.Deployment `json:"deployment"`
	Approval   *approvalView     `json:"approval,omitempty"`
}

// createDeployment records a deployment to the environment (its deploy permission is checked by
// the policy). In an environment that requires approvals, the deployment waits in
// awaiting_approval (202) with an approval request holding its job; otherwise its job is
// enqueued at once (201).
func (h *Handler) createDeployment(w http.ResponseWriter, r *http.Request) {
	obj, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if m, ok := obj["method"]; ok && string(m) == `"`+store.MethodGitopsUI+`"` {
		h.createGitopsDeploy(w, r, obj)
		return
	}
	var q createDeploymentReq
	raw, _ := json.Marshal(obj)
	if err := decodeStrict(raw, &q, ""); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := q.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}
	var resp *deploymentResp
	if !h.mutate(w, r, func(ctx context.Context, tx pgx.Tx) (*auditChange, error) {
		var (
			ch  *auditChange
			err error
		)
		resp, ch, err = h.createManualDeployment(ctx, tx, r, &q)
		return ch, err
	}) {
		return
	}
	status := http.StatusCreated
	if resp.Approval != nil {
		status = http.StatusAccepted
	}
	writeJSON(w, status, resp)
}

// createManualDeployment inserts a manual deployment and submits its job through the gate.
func (h *Handler) createManualDeployment(ctx context.Context, tx pgx.Tx, r *http.Request, q *createDeploymentReq) (*deploymentResp, *auditChange, error) {
	sc := scopeOf(r)
	g, err := h.gate(ctx, tx, r)
	if err != nil {
		return nil, nil, err
	}
	status := store.DeployPending
	if g.Held() {
		status = store.DeployAwaitingApproval
	}
	d, err := h.store.CreateDeployment(ctx, tx, store.NewDeployment{
		ProjectID: sc.Project.ID, EnvironmentID: sc.Env.ID, Method: store.MethodManual, Status: status,
		App: q.App, Revision: q.Revision, RequestedBy: &sc.Principal.UserID, Message: q.Message,
	})
	if err != nil {
		return nil, nil, err
	}
	summary := fmt.Sprintf("deploy %s %s to %s (manual)", q.App, q.Revision, sc.Env.Name)
	sub, err := g.Submit(ctx, tx, approval.TargetDeployment, d.ID, summary, jobs.ManualDeployArgs{DeploymentID: d.ID}, nil)
	if err != nil {
		return nil, nil, err
	}
	resp := &deploymentResp{Deployment: d}
	if sub.Request != nil {
		resp.Approval = &approvalView{ApprovalRequest: sub.Request, Votes: []store.Vote{}}
	}
	return resp, &auditChange{TargetType: "deployment", TargetID: d.ID, After: d, Message: summary, Details: submittedDetails(sub)}, nil
}
