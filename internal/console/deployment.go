package console

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// step is one stage of a deploy's progress: done, current, pending or failed.
type step struct {
	Label, State, Detail, SHA string
	At                        *time.Time
	// Link and LinkText point at where the step goes on (the approval request).
	Link, LinkText string
}

type progressPage struct {
	Slug     string
	P        *handlers.DeploymentProgress
	Steps    []step
	State    string // awaiting_approval, pushing, pushed, applied, rolling_out, succeeded, failed, …
	Headline string
	Badge    Badge
	Final    bool
}

// progressOf lays a deployment out as the steps a person follows: saved → (approved) →
// pushed → applied → rolling out → live, or where it stopped.
func progressOf(slug string, p *handlers.DeploymentProgress) progressPage {
	d := p.Deployment
	pg := progressPage{Slug: slug, P: p}
	created := d.CreatedAt
	pg.Steps = append(pg.Steps, step{Label: "Saved", State: "done", At: &created, Detail: "by the deploy form"})
	if a := p.Approval; a != nil {
		st := step{Label: "Approved", State: "done", At: a.DecidedAt, Link: fmt.Sprintf("/projects/%s/approvals/%d", slug, a.ID), LinkText: "the approval request"}
		var approvers, rejecter []string
		for _, v := range a.Votes {
			if v.Decision == store.VoteApprove {
				approvers = append(approvers, v.Username)
			} else {
				rejecter = append(rejecter, v.Username)
			}
		}
		switch {
		case d.Status == store.DeployAwaitingApproval:
			st.Label, st.State = "Awaiting approval", "current"
			st.Detail = fmt.Sprintf("%d of %d approvals; nothing reaches the cluster until the last", len(approvers), a.RequiredApprovals)
		case d.Status == store.DeployRejected:
			st.Label, st.State = "Rejected", "failed"
			st.Detail = "by " + strings.Join(rejecter, ", ") + ": " + a.Reason
		case d.Status == store.DeployCancelled:
			st.Label, st.State, st.Detail = "Cancelled", "failed", cmp.Or(d.Message, "the request "+a.State)
		default:
			st.Detail = "by " + strings.Join(approvers, ", ")
		}
		pg.Steps = append(pg.Steps, st)
	} else {
		switch d.Status {
		case store.DeployAwaitingApproval:
			pg.Steps = append(pg.Steps, step{Label: "Awaiting approval", State: "current", Detail: "nothing reaches the cluster until the last approval"})
		case store.DeployRejected:
			pg.Steps = append(pg.Steps, step{Label: "Rejected", State: "failed", Detail: d.Message})
		case store.DeployCancelled:
			pg.Steps = append(pg.Steps, step{Label: "Cancelled", State: "failed", Detail: d.Message})
		}
	}
	pushed := d.CommitSHA != ""
	pushStep := step{Label: "Pushed to Git", State: "pending"}
	switch {
	case pushed:
		pushStep.State, pushStep.SHA = "done", d.CommitSHA
		if p.CommitURL != "" {
			pushStep.Link, pushStep.LinkText = p.CommitURL, "the commit on the repository's site"
		}
		pushStep.Detail = fmt.Sprintf("%s — %s", firstLine(d.CommitMessage), d.CommitAuthor)
	case d.Status == store.DeployPending:
		pushStep.State = "current"
	case d.Status == store.DeployFailed:
		pushStep.State, pushStep.Detail = "failed", d.Message
	}
	pg.Steps = append(pg.Steps, pushStep)
	applied := step{Label: "Applied by Flux", State: "pending"}
	if res := p.Resource; res != nil && pushed {
		switch {
		case p.Applied:
			applied.State, applied.At = "done", res.LastReconcileAt
			applied.Detail = res.Kind + " " + res.Namespace + "/" + res.Name + " at " + shortRevision(res.LastAppliedRevision)
		case res.Status == "failed" || d.Status == store.DeployFailed:
			applied.State, applied.Detail = "failed", res.StatusMessage
		default:
			applied.State, applied.Detail = "current", "waiting for Flux to fetch the commit and apply it"
		}
	}
	pg.Steps = append(pg.Steps, applied)
	roll := step{Label: "Rolling out", State: "pending"}
	if ro := p.Rollout; ro != nil && pushed {
		roll.Detail = fmt.Sprintf("%d of %d pods ready (%d updated)", ro.Ready, ro.Desired, ro.Updated)
		if ro.Err != "" {
			roll.Detail = "cannot read the workload: " + ro.Err
		}
		switch {
		case ro.Ready >= ro.Desired && ro.Updated >= ro.Desired && p.Applied:
			roll.State = "done"
		case d.Status == store.DeployFailed:
			roll.State = "failed"
		default:
			roll.State = "current"
		}
		if ro.Message != "" {
			roll.Detail += " — " + ro.Message
		}
	} else if p.Applied && d.Status != store.DeploySucceeded {
		roll.State = "current"
	}
	if d.Status == store.DeploySucceeded && roll.State != "done" {
		roll.State = "done"
	}
	pg.Steps = append(pg.Steps, roll)
	live := step{Label: "Live", State: "pending"}
	switch d.Status {
	case store.DeploySucceeded:
		live.State, live.At, live.Detail = "done", d.FinishedAt, d.Message
	case store.DeployFailed:
		live.Label, live.State, live.At, live.Detail = "Failed", "failed", d.FinishedAt, d.Message
		if live.Detail == "" && p.Resource != nil {
			live.Detail = p.Resource.StatusMessage
		}
	}
	pg.Steps = append(pg.Steps, live)

	pg.Final = d.FinishedAt != nil || d.Status == store.DeploySucceeded || d.Status == store.DeployFailed ||
		d.Status == store.DeployRejected || d.Status == store.DeployCancelled
	switch {
	case d.Status == store.DeploySucceeded:
		pg.State, pg.Headline, pg.Badge = "succeeded", "Live: the new version runs.", StatusBadge("ready", "", false)
	case d.Status == store.DeployFailed:
		pg.State, pg.Headline, pg.Badge = "failed", "The deploy failed.", StatusBadge("failed", "", false)
	case d.Status == store.DeployRejected:
		pg.State, pg.Headline, pg.Badge = d.Status, "Rejected: nothing reached the cluster.", ApprovalBadge("rejected")
	case d.Status == store.DeployCancelled:
		pg.State, pg.Headline, pg.Badge = d.Status, "Cancelled: nothing reached the cluster.", Badge{Label: "Cancelled", Class: "grey", Icon: "unknown"}
	case d.Status == store.DeployAwaitingApproval:
		pg.State, pg.Headline, pg.Badge = "awaiting_approval", "Waiting for approvals.", Badge{Label: "Awaiting approval", Class: "waiting", Icon: "waiting"}
	case !pushed:
		pg.State, pg.Headline, pg.Badge = "pushing", "Writing the change to Git…", StatusBadge("reconciling", "", false)
	case roll.State == "current" || roll.State == "done":
		pg.State, pg.Headline, pg.Badge = "rolling_out", "Rolling out the new version…", StatusBadge("reconciling", "", false)
	case p.Applied:
		pg.State, pg.Headline, pg.Badge = "applied", "Applied; waiting for the workload.", StatusBadge("reconciling", "", false)
	default:
		pg.State, pg.Headline, pg.Badge = "pushed", "Pushed to Git; Flux applies it next.", StatusBadge("reconciling", "", false)
	}
	return pg
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

func (c *Console) progressData(w http.ResponseWriter, r *http.Request) (*progressPage, bool) {
	id, ok := c.idParam(w, r)
	if !ok {
		return nil, false
	}
	p, err := c.core.Progress(r, id)
	if err != nil {
		c.fail(w, r, err)
		return nil, false
	}
	pg := progressOf(handlers.ScopeOf(r).Project.Slug, p)
	return &pg, true
}

// deploymentAuditShown bounds the audit rows a deployment's page lists.
const deploymentAuditShown = 50

// deploymentPage is the progress and the audit rows of the deployment.
type deploymentPage struct {
	Progress *progressPage
	Audit    []store.AuditEntry
}

// deployment is a deploy's live progress page, with the audit rows that belong to it.
func (c *Console) deployment(w http.ResponseWriter, r *http.Request) {
	pg, ok := c.progressData(w, r)
	if !ok {
		return
	}
	sc := handlers.ScopeOf(r)
	rows, err := c.store.ListAudit(r.Context(), c.store.Pool(), store.AuditFilter{ProjectID: sc.Project.ID,
		TargetType: "deployment", TargetID: strconv.FormatInt(pg.P.Deployment.ID, 10), Limit: deploymentAuditShown})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "deployment", deploymentPage{Progress: pg, Audit: rows})
}

func (c *Console) deploymentProgress(w http.ResponseWriter, r *http.Request) {
	if pg, ok := c.progressData(w, r); ok {
		c.fragment(w, r, "deployment", "progress", pg)
	}
}

// diffPage is the commit-diff section of a deployment's page. Loaded is false until it has
// been read (the page asks for it right after it opens, and again when the deployment changes
// while it is not pushed yet).
type diffPage struct {
	Slug    string
	ID      int64
	Loaded  bool
	Poll    bool   // ask for it as soon as the page opens
	Waiting string // why there is no diff yet
	Err     string // why it could not be read
	Diff    *handlers.DeploymentDiff
	Lines   []diffLine
}

// deploymentDiff renders what the deployment's commit changed, read from Git.
func (c *Console) deploymentDiff(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	pg := diffPage{Slug: handlers.ScopeOf(r).Project.Slug, ID: id, Loaded: true}
	d, err := c.core.DeploymentDiff(r, id)
	switch fl := c.core.Failure(r, err); {
	case err == nil:
		pg.Diff, pg.Lines = d, diffLines(d.Diff)
	case fl.Status == http.StatusNotFound || fl.Status == http.StatusForbidden:
		c.Fail(w, r, fl)
		return
	case fl.Field == "commit_sha" && strings.Contains(fl.Msg, "not been pushed"):
		pg.Loaded, pg.Waiting = false, "The commit's changes show here once it is pushed."
	default:
		pg.Err = fl.Msg
	}
	c.fragment(w, r, "deployment", "commit_diff", pg)
}
