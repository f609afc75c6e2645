package console_test

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestListPagesArePaged: a list page shows one page and links to the next with the API's
// cursor; following the links shows every member once, and a bad cursor is a 400.
func TestListPagesArePaged(t *testing.T) {
	b := setup(t, false)
	ctx := context.Background()
	for i := range 120 {
		u, err := b.st.CreateUser(ctx, b.st.Pool(), store.User{Username: fmt.Sprintf("m%03d", i)})
		require.NoError(t, err)
		require.NoError(t, b.st.AddMember(ctx, b.st.Pool(), b.seed.Project.ID, u.ID, "viewer"))
	}
	get := func(path string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+b.token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}
	row, more := regexp.MustCompile(`<tr id="member-([^"]+)"`), regexp.MustCompile(`<a id="more" rel="next" href="([^"]+)"`)
	seen := map[string]bool{}
	path, pages := "/projects/webapp/members", 0
	for path != "" {
		status, body := get(path)
		require.Equal(t, http.StatusOK, status, path)
		rows := row.FindAllStringSubmatch(body, -1)
		require.LessOrEqual(t, len(rows), 100, "one page shows at most 100 members")
		for _, r := range rows {
			require.False(t, seen[r[1]], "member %s shown twice", r[1])
			seen[r[1]] = true
		}
		path = ""
		if m := more.FindStringSubmatch(body); m != nil {
			path = html.UnescapeString(m[1])
		}
		pages++
	}
	require.Equal(t, 2, pages)
	require.Len(t, seen, 122, "120 members, alice and victor")

	status, body := get("/projects/webapp?after=a/b")
	require.Equal(t, http.StatusBadRequest, status, "the overview's cursor is cluster/kind/namespace/name")
	require.Contains(t, body, "after")
}
