package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type tokensPage struct {
	// Owner is the person whose tokens an admin manages at /admin/users/{user}/tokens; "" on
	// one's own /tokens. Base is the page's path.
	Owner   string
	Base    string
	Tokens  []store.APIToken
	Created *handlers.CreatedToken // shown once, on the page that created it
	Error   *handlers.Failure
	Name    string
	More    string // the next (older) page
}

// tokens lists the signed-in person's API tokens with New and Revoke.
func (c *Console) tokens(w http.ResponseWriter, r *http.Request) {
	c.showTokens(w, r, http.StatusOK, &tokensPage{})
}

func (c *Console) showTokens(w http.ResponseWriter, r *http.Request, status int, p *tokensPage) {
	before, err := handlers.BeforeParam(r)
	var items []store.APIToken
	if err == nil {
		items, err = c.core.Tokens(r, before, tokensShown+1)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var next string
	p.Tokens, next = trim(items, tokensShown, func(t store.APIToken) string { return strconv.FormatInt(t.ID, 10) })
	p.Owner, p.Base = tokensBase(r)
	p.More = moreURL(p.Base, "before", next)
	c.render(w, r, status, "tokens", p)
}

// createToken issues a token and shows its value on this answer only: never in a cookie, a
// redirect or the log (the page is sent with Cache-Control: no-store).
func (c *Console) createToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	q := handlers.NewToken{Name: r.PostForm.Get("name"), ExpiresIn: strings.TrimSpace(r.PostForm.Get("expires_in"))}
	tok, err := c.core.CreateToken(r, q)
	if err != nil {
		fl := c.core.Failure(r, err)
		if fl.Status == http.StatusForbidden || fl.Status >= 500 {
			c.Fail(w, r, fl)
			return
		}
		c.showTokens(w, r, fl.Status, &tokensPage{Error: &fl, Name: q.Name})
		return
	}
	c.showTokens(w, r, http.StatusCreated, &tokensPage{Created: tok})
}

// revokeToken revokes one of the person's tokens at once.
func (c *Console) revokeToken(w http.ResponseWriter, r *http.Request) {
	id, ok := c.idParam(w, r)
	if !ok {
		return
	}
	_, base := tokensBase(r)
	t, err := c.core.RevokeToken(r, id)
	if err != nil {
		c.back(w, r, base, err)
		return
	}
	setFlash(w, "ok", "Revoked token "+t.Name+": it no longer works.")
	redirect(w, r, base)
}

// tokensBase is whose tokens the request is about (the {user} an admin opened, "" for one's
// own) and the path of their page.
func tokensBase(r *http.Request) (owner, base string) {
	if sc := handlers.ScopeOf(r); sc != nil && sc.User != nil {
		return sc.User.Username, "/admin/users/" + url.PathEscape(sc.User.Username) + "/tokens"
	}
	return "", "/tokens"
}
