package handlers

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/policy"
)

// memberRecheck is how often an open stream checks again that its user may still read the
// project: a removed member stops receiving within this time.
const memberRecheck = 30 * time.Second

// eventStream serves the project's change feed as Server-Sent Events (GET
// …/projects/{project}/events/stream): deployments, resources, reconcile requests, Flux events,
// notifications and approvals, resumable with Last-Event-ID. Every event is authorized: it
// must be this project's, a notification must be addressed to the project or to the caller,
// and the caller's membership is checked again while the stream stays open.
func (h *Handler) eventStream(w http.ResponseWriter, r *http.Request) {
	if h.feed == nil {
		h.fail(w, r, &httpError{Status: http.StatusServiceUnavailable, Msg: "the change feed is not running on this receiver"})
		return
	}
	sc := scopeOf(r)
	pid := sc.Project.ID
	var (
		mu      sync.Mutex
		checked = time.Now()
		allowed = true
	)
	allow := func(ev feed.Event) bool {
		if ev.ProjectID == nil || *ev.ProjectID != pid {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if time.Since(checked) > memberRecheck {
			checked = time.Now()
			allowed = h.mayRead(r, sc)
		}
		if !allowed {
			return false
		}
		if ev.Kind == "notification" {
			var p struct {
				UserID *int64 `json:"user_id"`
			}
			if json.Unmarshal(ev.Payload, &p) != nil || p.UserID != nil && *p.UserID != sc.Principal.UserID {
				return false
			}
		}
		return true
	}
	if err := feed.ServeSSE(w, r, h.feed, h.store.Pool(), &pid, allow); err != nil {
		hlog.FromRequest(r).Debug().Err(err).Msg("event stream ended")
	}
}

// mayRead asks again whether the principal may still read the scoped project.
func (h *Handler) mayRead(r *http.Request, sc *reqScope) bool {
	role, err := h.store.MemberRole(r.Context(), h.store.Pool(), sc.Project.ID, sc.Principal.UserID)
	if err != nil {
		return false
	}
	s := sc.subject()
	s.Role, _ = policy.ParseRole(role)
	return policy.Authorize("event.stream", s, sc.target()) == nil
}

// userEventStream serves the caller's own change feed (GET /api/v1/events/stream), for the
// console's pages of no project (the approvals inbox, the notifications): the notifications
// they may see and the approval requests of their projects (admins: every project's),
// resumable like the project stream. Membership is read again while the stream stays open.
func (h *Handler) userEventStream(w http.ResponseWriter, r *http.Request) {
	if h.feed == nil {
		h.fail(w, r, &httpError{Status: http.StatusServiceUnavailable, Msg: "the change feed is not running on this receiver"})
		return
	}
	p := scopeOf(r).Principal
	var (
		mu       sync.Mutex
		checked  time.Time
		projects map[int64]bool
	)
	member := func(id int64) bool {
		mu.Lock()
		defer mu.Unlock()
		if projects == nil || time.Since(checked) > memberRecheck {
			checked = time.Now()
			ps, err := h.store.AllProjects(r.Context(), h.store.Pool(), p.UserID)
			if err != nil {
				return false
			}
			projects = make(map[int64]bool, len(ps))
			for _, pr := range ps {
				projects[pr.ID] = true
			}
		}
		return projects[id]
	}
	allow := func(ev feed.Event) bool {
		inProject := ev.ProjectID != nil && (p.Admin || member(*ev.ProjectID))
		switch ev.Kind {
		case "approval":
			return inProject
		case "notification":
			var n struct {
				UserID *int64 `json:"user_id"`
			}
			if json.Unmarshal(ev.Payload, &n) != nil {
				return false
			}
			if n.UserID != nil {
				return *n.UserID == p.UserID
			}
			return inProject || ev.ProjectID == nil && p.Admin
		}
		return false
	}
	if err := feed.ServeSSE(w, r, h.feed, h.store.Pool(), nil, allow); err != nil {
		hlog.FromRequest(r).Debug().Err(err).Msg("event stream ended")
	}
}
