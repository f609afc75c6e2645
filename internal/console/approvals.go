package console

import (
	"net/http"
	"strconv"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
)

// inbox lists the approval requests waiting on the signed-in person, across their projects.
func (c *Console) inbox(w http.ResponseWriter, r *http.Request) {
	d, err := c.inboxData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "approvals", d)
}

// inboxList is the inbox alone: what a new request or a vote (in any of the user's projects)
// refreshes.
func (c *Console) inboxList(w http.ResponseWriter, r *http.Request) {
	d, err := c.inboxData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "approvals", "inbox", d)
}

func (c *Console) inboxData(r *http.Request) (inboxPage, error) {
	p := auth.FromContext(r.Context())
	items, err := c.core.ApprovalInbox(r.Context(), p)
	if err != nil {
		return inboxPage{}, err
	}
	expired, err := c.core.ExpiredInbox(r.Context(), p)
	return inboxPage{Waiting: items, Expired: expired}, err
}

type inboxPage struct{ Waiting, Expired []handlers.InboxItem }

// approvalBody is the request's page without its frame: what a vote (anyone's) refreshes.
func (c *Console) approvalBody(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	d, err := c.core.Approval(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "approval", "approval_body", approvalData{Slug: handlers.ScopeOf(r).Project.Slug, D: d})
}

// approvalData is what approval_body renders.
type approvalData struct {
	Slug string
	D    *handlers.ApprovalDetail
}

// approval is one request: what it will change, the votes so far, and Approve / Reject when
// the person may vote (the reason shown when not).
func (c *Console) approval(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	d, err := c.core.Approval(r, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "approval", approvalData{Slug: handlers.ScopeOf(r).Project.Slug, D: d})
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request) { c.vote(w, r, false) }
func (c *Console) reject(w http.ResponseWriter, r *http.Request)  { c.vote(w, r, true) }

// vote casts the person's vote and comes back to the request; a refusal of the request's
// state or a missing reason shows there, a denial as the 403 page.
func (c *Console) vote(w http.ResponseWriter, r *http.Request, reject bool) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	back := "/projects/" + handlers.ScopeOf(r).Project.Slug + "/approvals/" + strconv.FormatInt(id, 10)
	_ = r.ParseForm()
	out, err := c.core.Vote(r, id, reject, r.PostForm.Get("reason"))
	if err != nil {
		f := c.core.Failure(r, err)
		if f.Status == http.StatusForbidden || f.Status == http.StatusNotFound || f.Status >= 500 {
			c.Fail(w, r, f)
			return
		}
		setFlash(w, "error", f.Msg)
		redirect(w, r, back)
		return
	}
	msg := "Approved: " + strconv.Itoa(out.Approvals) + " of " + strconv.Itoa(out.Approval.RequiredApprovals) + " approvals."
	switch {
	case reject:
		msg = "Rejected: nothing of this change reaches the cluster."
	case out.Released:
		msg = "Approved: that was the last approval needed, the change goes ahead."
	}
	setFlash(w, "ok", msg)
	redirect(w, r, back)
}
