package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// UserNotification is an in-app notification as its reader sees it, with the console page it
// is about.
type UserNotification struct {
	store.InboxNotification
	// Link is the console path of the deployment, resource or approval request it names ("" when
	// it names none fluxbridge has a page for).
	Link string `json:"link,omitempty"`
}

// NotificationList is a page of a user's notifications and the count of all the unread ones.
type NotificationList struct {
	Items      []UserNotification `json:"items"`
	Unread     int                `json:"unread"`
	NextBefore *int64             `json:"next_before,omitempty"`
}

// Notifications returns the notifications p may see (their projects', those addressed to them;
// admins every one), newest first, with their read state for p.
func (h *Handler) Notifications(ctx context.Context, p *auth.Principal, unreadOnly bool, before int64, limit int) (NotificationList, error) {
	if limit <= 0 {
		limit = 50
	}
	items, unread, err := h.store.UserNotifications(ctx, h.store.Pool(), store.NotificationQuery{
		UserID: p.UserID, Admin: p.Admin, UnreadOnly: unreadOnly, Before: before, Limit: limit})
	if err != nil {
		return NotificationList{}, err
	}
	out := NotificationList{Items: make([]UserNotification, len(items)), Unread: unread}
	for i, n := range items {
		out.Items[i] = UserNotification{InboxNotification: n, Link: notificationLink(n)}
	}
	if len(items) == limit {
		next := items[len(items)-1].ID
		out.NextBefore = &next
	}
	return out, nil
}

// UnreadNotifications counts the notifications p has not read.
func (h *Handler) UnreadNotifications(ctx context.Context, p *auth.Principal) (int, error) {
	return h.store.UnreadNotifications(ctx, h.store.Pool(), p.UserID, p.Admin)
}

// MarkNotificationsRead marks ids read for p, or every notification p may see when all is set.
// An id p may not see is a 404 that names it, and marks nothing. It returns how many were
// unread. Read state is the reader's own: it is not audited.
func (h *Handler) MarkNotificationsRead(ctx context.Context, p *auth.Principal, ids []int64, all bool) (int, error) {
	switch {
	case all && len(ids) > 0:
		return 0, errBadRequest("ids", "give either ids or all, not both")
	case all:
		return h.store.MarkAllNotificationsRead(ctx, h.store.Pool(), p.UserID, p.Admin)
	case len(ids) == 0:
		return 0, errBadRequest("ids", "name at least one notification, or set all")
	case len(ids) > maxPageSize:
		return 0, errBadRequest("ids", "at most %d at a time", maxPageSize)
	}
	for i, id := range ids {
		if id <= 0 {
			return 0, errBadRequest(fmt.Sprintf("ids[%d]", i), "must be a positive integer")
		}
	}
	var unread int
	err := h.store.WithTx(ctx, func(tx pgx.Tx) error {
		before, err := h.store.UnreadNotifications(ctx, tx, p.UserID, p.Admin)
		if err != nil {
			return err
		}
		missing, err := h.store.MarkNotificationsRead(ctx, tx, p.UserID, p.Admin, ids)
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return errNotFound("notification %d not found", missing[0])
		}
		after, err := h.store.UnreadNotifications(ctx, tx, p.UserID, p.Admin)
		unread = before - after
		return err
	})
	return unread, err
}

// notificationLink is the console page of what n is about.
func notificationLink(n store.InboxNotification) string {
	if n.ProjectSlug == nil || n.TargetID == "" {
		return ""
	}
	if _, err := strconv.ParseInt(n.TargetID, 10, 64); err != nil {
		return ""
	}
	base := "/projects/" + *n.ProjectSlug
	switch n.TargetType {
	case "deployment":
		return base + "/deployments/" + n.TargetID
	case "gitops_resource", "resource":
		return base + "/resources/" + n.TargetID
	case "approval_request", "approval":
		return base + "/approvals/" + n.TargetID
	}
	return ""
}

// listMyNotifications answers GET /api/v1/notifications: the caller's notifications with read
// state (?unread=true for the unread ones only; ?before= pages).
func (h *Handler) listMyNotifications(w http.ResponseWriter, r *http.Request) {
	p := params{r: r}
	limit, before := p.limit(), p.int64("before")
	unread := p.oneOf("unread", "true", "false") == "true"
	if p.err != nil {
		h.fail(w, r, p.err)
		return
	}
	list, err := h.Notifications(r.Context(), scopeOf(r).Principal, unread, before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// markNotificationsRead answers POST /api/v1/notifications/read: {"ids": [...]} or {"all": true}.
func (h *Handler) markNotificationsRead(w http.ResponseWriter, r *http.Request) {
	var in struct {
		IDs []int64 `json:"ids"`
		All bool    `json:"all"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		h.fail(w, r, err)
		return
	}
	p := scopeOf(r).Principal
	n, err := h.MarkNotificationsRead(r.Context(), p, in.IDs, in.All)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	unread, err := h.UnreadNotifications(r.Context(), p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"marked": n, "unread": unread})
}
