package handlers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
)

// TestNoAPIRouteAnswersWithoutAValidToken sends every API route, and paths that are no route,
// with no credentials and with every kind of bad ones: each gets 401 with a Bearer challenge
// and a message saying what is wrong, before any routing or database work for the route.
func TestNoAPIRouteAnswersWithoutAValidToken(t *testing.T) {
	b := setup(t)
	f := newFixture(t, b)
	ctx := context.Background()

	revoked := b.token(t, f.users["owner"].ID, nil)
	_, err := b.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE hash = $1`, auth.HashToken(revoked))
	require.NoError(t, err)
	soon := time.Now().Add(time.Hour)
	expired := b.token(t, f.users["owner"].ID, &soon)
	_, err = b.pool.Exec(ctx, `UPDATE api_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 minute' WHERE hash = $1`, auth.HashToken(expired))
	require.NoError(t, err)
	ghost, disabled := b.user(t, "ghost", "owner")
	_, err = b.pool.Exec(ctx, `UPDATE users SET disabled_at = now() WHERE id = $1`, ghost.ID)
	require.NoError(t, err)
	unknown, _, err := auth.NewToken()
	require.NoError(t, err)

	creds := []struct {
		name, header, want string
	}{
		{"no credentials", "", "authentication required"},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", "unrecognised credentials"},
		{"not our token", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "unrecognised credentials"},
		{"an unknown token", "Bearer " + unknown, "invalid API token"},
		{"a revoked token", "Bearer " + revoked, "was revoked at"},
		{"an expired token", "Bearer " + expired, "expired at"},
		{"a disabled user's token", "Bearer " + disabled, "user ghost is disabled"},
	}
	paths := []handlers.Route{{Method: http.MethodGet, Pattern: "/api/v1/nothing"}, {Method: http.MethodGet, Pattern: "/api/v2/projects"},
		{Method: http.MethodPut, Pattern: "/api/v1/projects"}}
	for _, rt := range handlers.APIRoutes(b.h) {
		paths = append(paths, handlers.Route{Method: rt.Method, Pattern: f.path(rt.Pattern, "production")})
	}
	auditBefore := b.count(t, `SELECT count(*) FROM audit_logs`)
	for _, c := range creds {
		for _, p := range paths {
			req, err := http.NewRequest(p.Method, b.srv.URL+p.Pattern, nil)
			require.NoError(t, err)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			got := decodeBody(t, resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s with %s: %v", p.Method, p.Pattern, c.name, got)
			require.Contains(t, got["error"], c.want)
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), `Bearer realm="fluxbridge"`)
		}
	}
	require.Equal(t, auditBefore, b.count(t, `SELECT count(*) FROM audit_logs`))

	// The same routes answer the valid token of an enabled user.
	resp, got := b.do(t, f.tokens["viewer"], http.MethodGet, "/api/v1/me", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, got)
	require.Equal(t, "vera", got["user"].(map[string]any)["username"])
	require.Equal(t, "token", got["auth_method"])
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.username = 'vera' AND t.last_used_at IS NOT NULL`))

	// Health, metrics and the Flux webhook keep their own (or no) authentication.
	resp, _ = b.get(t, "/healthz")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, got = b.post(t, "/hooks/flux/prod-eu", []byte(`{}`), map[string]string{"Authorization": "Bearer " + b.admin})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Contains(t, got["error"], "bearer token does not match", "an API token is not a webhook token")
}
