package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/policy"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type membersPage struct {
	Slug    string
	Members []store.Member
	Roles   []string
	CanEdit bool
	More    string // the next page
}

// members lists the project's members and roles; an owner adds people, changes roles and
// removes them (never the last owner).
func (c *Console) members(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	after, err := handlers.AfterParam(r)
	var items []store.Member
	if err == nil {
		items, err = c.store.ListMembers(r.Context(), c.store.Pool(), sc.Project.ID, after, membersShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	items, next := trim(items, membersShown, func(m store.Member) string { return m.Username })
	c.render(w, r, http.StatusOK, "members", membersPage{Slug: sc.Project.Slug, Members: items, Roles: policy.RoleNames(),
		CanEdit: c.core.Can(sc, "member.set", nil) == nil, More: moreURL("/projects/"+sc.Project.Slug+"/members", "after", next)})
}

// userOf finds the user a member form names.
func (c *Console) userOf(r *http.Request, username string) (*store.User, error) {
	u, err := c.store.UserByUsername(r.Context(), c.store.Pool(), username)
	if errors.Is(err, store.ErrNotFound) {
		return nil, handlers.BadRequest("username", "no user "+username+": an admin creates users first")
	}
	return u, err
}

// setMember adds a person (the form's username) or changes a member's role ({user}).
func (c *Console) setMember(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	back := "/projects/" + sc.Project.Slug + "/members"
	_ = r.ParseForm()
	name := chi.URLParam(r, "user")
	if name == "" {
		name = strings.TrimSpace(r.PostForm.Get("username"))
	}
	u, err := c.userOf(r, name)
	if err == nil {
		_, err = c.core.SetMember(r, u, r.PostForm.Get("role"))
	}
	if err != nil {
		c.back(w, r, back, err)
		return
	}
	setFlash(w, "ok", u.Username+" is now "+r.PostForm.Get("role")+" of this project.")
	redirect(w, r, back)
}

// removeMember removes {user} from the project.
func (c *Console) removeMember(w http.ResponseWriter, r *http.Request) {
	sc := handlers.ScopeOf(r)
	back := "/projects/" + sc.Project.Slug + "/members"
	u, err := c.userOf(r, chi.URLParam(r, "user"))
	if err == nil {
		err = c.core.RemoveMember(r, u)
	}
	if err != nil {
		c.back(w, r, back, err)
		return
	}
	setFlash(w, "ok", "Removed "+u.Username+" from this project.")
	redirect(w, r, back)
}
