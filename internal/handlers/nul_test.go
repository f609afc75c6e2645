package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNULIsABadRequest: Postgres text cannot hold NUL, so a NUL anywhere a request carries text
// — a JSON string (nested too), a query parameter, a form field — is a 400 naming where it is,
// never a 500, and nothing is stored.
func TestNULIsABadRequest(t *testing.T) {
	b := setup(t)
	_, admin := b.user(t, "nulroot", "admin")
	projects := b.count(t, "SELECT count(*) FROM projects")
	for _, tt := range []struct {
		method, path string
		body         any
		field        string
	}{
		{http.MethodPost, "/api/v1/projects", `{"slug": "nul", "name": "a\u0000b"}`, "name"},
		{http.MethodPost, "/api/v1/projects", `{"slug": "nul", "name": "ok", "description": "x", "owner": "\u0000"}`, "owner"},
		{http.MethodPut, "/api/v1/projects/webapp/members/nulroot", `{"role": "viewer\u0000"}`, "role"},
		{http.MethodGet, "/api/v1/resources?cluster=prod%00eu", nil, "cluster"},
		{http.MethodGet, "/api/v1/projects/webapp/audit?action=%00", nil, "action"},
	} {
		resp, got := b.do(t, admin, tt.method, tt.path, tt.body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %s: %v", tt.method, tt.path, got)
		require.Equal(t, tt.field, got["field"], "%s %s: %v", tt.method, tt.path, got)
		require.Contains(t, got["error"], "NUL character")
	}
	// An escaped backslash before "u0000" is text, not NUL.
	resp, got := b.do(t, admin, http.MethodPost, "/api/v1/projects", `{"slug": "backslash", "name": "a\\u0000b"}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%v", got)
	require.Equal(t, projects+1, b.count(t, "SELECT count(*) FROM projects"))
}
