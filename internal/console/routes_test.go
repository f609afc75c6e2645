package console_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/console"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/policy"
)

// TestEveryPageRouteIsAuthorized: every page but sign-in and static files names a policy action
// of the one table, and without a session none answers anything but the way to sign in.
func TestEveryPageRouteIsAuthorized(t *testing.T) {
	b := setup(t, false)
	h := handlers.New(handlers.Deps{Store: b.st, Logger: zerolog.Nop()})
	pages, err := console.New(console.Deps{Core: h, Sessions: &auth.Sessions{Store: b.st}})
	require.NoError(t, err)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, rt := range pages.PageRoutes() {
		if rt.Public {
			require.True(t, strings.HasPrefix(rt.Pattern, "/static/") || strings.HasPrefix(rt.Pattern, "/signin") ||
				strings.HasPrefix(rt.Pattern, "/password/"), "public route %s %s", rt.Method, rt.Pattern)
			continue
		}
		_, ok := policy.RuleFor(rt.Action)
		require.True(t, ok, "page %s %s names action %q, which the policy table lacks", rt.Method, rt.Pattern, rt.Action)
		path := strings.NewReplacer("{project}", "webapp", "{env}", "production", "{id}", "1").Replace(rt.Pattern)
		req, _ := http.NewRequest(rt.Method, b.srv.URL+path, nil)
		resp, err := noFollow.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		if rt.Method == http.MethodGet {
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s %s", rt.Method, path)
			require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/signin?next="), resp.Header.Get("Location"))
		} else {
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s", rt.Method, path)
		}
	}
}
