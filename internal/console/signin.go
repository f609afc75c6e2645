package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

type signInData struct {
	Next, Username, Error string
}

// safeNext keeps a post-sign-in target on this site: a path, never "//host" or a URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	d := signInData{Next: safeNext(r.URL.Query().Get("next")), Error: r.URL.Query().Get("reason")}
	if len(d.Error) > 200 {
		d.Error = ""
	}
	c.render(w, r, http.StatusOK, "signin", d)
}

// signIn checks the password and starts a session (a new one: any session the browser had is
// revoked first), then goes where the browser was going. A wrong username or password says
// which neither is, with 401.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.Fail(w, r, failure(http.StatusBadRequest, "", "unreadable form"))
		return
	}
	d := signInData{Next: safeNext(r.PostForm.Get("next")), Username: strings.TrimSpace(r.PostForm.Get("username"))}
	p, err := c.sessions.SignIn(w, r, d.Username, r.PostForm.Get("password"))
	var ce *auth.CredentialError
	switch {
	case err == nil:
		c.log.Info().Str("user", p.Username).Str("ip", r.RemoteAddr).Msg("signed in")
		redirect(w, r, d.Next)
		return
	case errors.Is(err, auth.ErrBadSignIn):
		d.Error = "Wrong username or password."
	case errors.As(err, &ce):
		d.Error = ce.Reason
	default:
		c.fail(w, r, err)
		return
	}
	c.log.Warn().Str("user", d.Username).Str("ip", r.RemoteAddr).Msg("sign-in refused")
	c.render(w, r, http.StatusUnauthorized, "signin", d)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if err := c.sessions.SignOut(w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	redirect(w, r, "/signin")
}

type passwordData struct {
	Min   int
	Error string
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "password", passwordData{Min: auth.MinPasswordLen})
}

// setPassword sets a password through an admin-issued one-time link, then asks to sign in.
func (c *Console) setPassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		c.Fail(w, r, failure(http.StatusBadRequest, "", "unreadable form"))
		return
	}
	d := passwordData{Min: auth.MinPasswordLen}
	pw := r.PostForm.Get("password")
	if pw != r.PostForm.Get("confirm") {
		d.Error = "The two passwords differ."
		c.render(w, r, http.StatusBadRequest, "password", d)
		return
	}
	_, err := auth.SetPasswordWithLink(r.Context(), c.store, chi.URLParam(r, "token"), pw)
	switch {
	case err == nil:
		setFlash(w, "ok", "Password set. Sign in with it.")
		redirect(w, r, "/signin")
	case errors.Is(err, store.ErrNotFound):
		d.Error = "This link is unknown, used or expired; ask an admin for a new one."
		c.render(w, r, http.StatusNotFound, "password", d)
	case auth.CheckPasswordPolicy(pw) != nil:
		d.Error = "The password " + err.Error() + "."
		c.render(w, r, http.StatusBadRequest, "password", d)
	default:
		c.fail(w, r, err)
	}
}
