package console

import (
	"net/http"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type usersPage struct {
	Users []store.User
	// Link is a one-time password link just issued, and for whom: shown on this answer only.
	Link, LinkFor string
	Error         *handlers.Failure
	Form          handlers.NewUser
	More          string // the next page
}

// users is the admin's list of users with Create, a one-time password link and Disable/Enable.
func (c *Console) users(w http.ResponseWriter, r *http.Request) {
	c.showUsers(w, r, http.StatusOK, &usersPage{})
}

func (c *Console) showUsers(w http.ResponseWriter, r *http.Request, status int, p *usersPage) {
	after, err := handlers.AfterParam(r)
	var items []store.User
	if err == nil {
		items, err = c.store.ListUsers(r.Context(), c.store.Pool(), after, usersShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var next string
	p.Users, next = trim(items, usersShown, func(u store.User) string { return u.Username })
	p.More = moreURL("/admin/users", "after", next)
	c.render(w, r, status, "users", p)
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f := r.PostForm
	q := handlers.NewUser{Username: strings.TrimSpace(f.Get("username")), DisplayName: strings.TrimSpace(f.Get("display_name")),
		Email: strings.TrimSpace(f.Get("email")), IsAdmin: f.Get("is_admin") == "true"}
	u, err := c.core.CreateUser(r, q)
	if err != nil {
		fl := c.core.Failure(r, err)
		if fl.Status == http.StatusForbidden || fl.Status >= 500 {
			c.Fail(w, r, fl)
			return
		}
		c.showUsers(w, r, fl.Status, &usersPage{Error: &fl, Form: q})
		return
	}
	setFlash(w, "ok", "Created user "+u.Username+": give them a password link, and add them to projects.")
	redirect(w, r, "/admin/users#user-"+u.Username)
}

func (c *Console) disableUser(w http.ResponseWriter, r *http.Request) { c.setDisabled(w, r, true) }
func (c *Console) enableUser(w http.ResponseWriter, r *http.Request)  { c.setDisabled(w, r, false) }

func (c *Console) setDisabled(w http.ResponseWriter, r *http.Request, disabled bool) {
	u, err := c.core.UpdateUser(r, handlers.UserChange{Disabled: &disabled})
	if err != nil {
		c.back(w, r, "/admin/users", err)
		return
	}
	msg := "Enabled " + u.Username + "."
	if disabled {
		msg = "Disabled " + u.Username + ": they cannot sign in, their tokens stop working and their votes stop counting."
	}
	setFlash(w, "ok", msg)
	redirect(w, r, "/admin/users#user-"+u.Username)
}

// passwordLink issues a one-time link for the user to set their console password and shows
// it on this answer only.
func (c *Console) passwordLink(w http.ResponseWriter, r *http.Request) {
	out, err := c.core.PasswordLink(r)
	if err != nil {
		c.back(w, r, "/admin/users", err)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c.showUsers(w, r, http.StatusCreated, &usersPage{Link: scheme + "://" + r.Host + out.Path, LinkFor: handlers.ScopeOf(r).User.Username})
}
