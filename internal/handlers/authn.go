package handlers

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/hlog"

	"github.com/fluxbridge/fluxbridge/internal/auth"
)

// authenticate identifies the caller of every /api request through the Authenticator and puts
// the principal in the request context; a request without valid credentials gets 401 and
// never reaches routing, so an anonymous caller learns nothing, not even which paths exist.
func (h *Handler) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authn.Authenticate(r)
		var ce *auth.CredentialError
		switch {
		case err == nil && p != nil:
		case errors.Is(err, auth.ErrNoCredentials) && r.Header.Get("Authorization") == "":
			h.unauthorized(w, r, "", "authentication required: send the header \"Authorization: Bearer <API token>\"")
			return
		case errors.Is(err, auth.ErrNoCredentials):
			h.unauthorized(w, r, "invalid_request", "unrecognised credentials: want \"Authorization: Bearer "+auth.TokenPrefix+"…\" with an API token")
			return
		case errors.As(err, &ce):
			h.unauthorized(w, r, "invalid_token", ce.Reason)
			return
		default:
			h.fail(w, r, err)
			return
		}
		hlog.FromRequest(r).UpdateContext(func(c zerolog.Context) zerolog.Context {
			return c.Str("user", p.Username).Int64("token_id", p.TokenID)
		})
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
	})
}

// unauthorized answers 401 with a Bearer challenge (RFC 6750); code is its error parameter.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, code, msg string) {
	challenge := `Bearer realm="fluxbridge"`
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	h.fail(w, r, &httpError{Status: http.StatusUnauthorized, Msg: msg})
}
