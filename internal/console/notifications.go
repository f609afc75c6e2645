package console

import (
	"net/http"
	"strconv"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
)

// notificationsPage is what notifications.html shows.
type notificationsPage struct {
	handlers.NotificationList
	UnreadOnly bool
	Before     int64
}

func (c *Console) notificationsData(r *http.Request) (notificationsPage, error) {
	q := r.URL.Query()
	d := notificationsPage{UnreadOnly: q.Get("unread") == "true"}
	if v, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && v > 0 {
		d.Before = v
	}
	list, err := c.core.Notifications(r.Context(), auth.FromContext(r.Context()), d.UnreadOnly, d.Before, 50)
	d.NotificationList = list
	return d, err
}

// notifications is the notifications center: the user's in-app notifications across projects,
// unread ones marked, each linking to what it is about.
func (c *Console) notifications(w http.ResponseWriter, r *http.Request) {
	d, err := c.notificationsData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "notifications", d)
}

// notificationsList is the list alone: what a new notification refreshes.
func (c *Console) notificationsList(w http.ResponseWriter, r *http.Request) {
	d, err := c.notificationsData(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.fragment(w, r, "notifications", "notification_list", d)
}

// markRead marks one notification (id) or all of them (all=1) read, then goes on to next: the
// notification's page when the person clicked through, else back to the list.
func (c *Console) markRead(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	var ids []int64
	if v := r.PostForm.Get("id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			c.back(w, r, "/notifications", handlers.BadRequest("id", "must be a positive integer"))
			return
		}
		ids = append(ids, id)
	}
	all := r.PostForm.Get("all") == "1"
	n, err := c.core.MarkNotificationsRead(r.Context(), auth.FromContext(r.Context()), ids, all)
	if err != nil {
		c.back(w, r, "/notifications", err)
		return
	}
	next := r.PostForm.Get("next")
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		next = "/notifications"
	}
	if all {
		setFlash(w, "ok", "Marked "+plural(n, "notification")+" read.")
	}
	redirect(w, r, next)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
