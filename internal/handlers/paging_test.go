package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// pageKey names an item of a list: its id, or what identifies it where it has none.
func pageKey(item map[string]any) string {
	switch {
	case item["deployment"] != nil: // a rollback target
		return pageKey(item["deployment"].(map[string]any))
	case item["kind"] != nil && item["id"] == nil: // a discovered object
		return fmt.Sprintf("%s/%s/%s", item["kind"], item["namespace"], item["name"])
	case item["user_id"] != nil && item["role"] != nil: // a member
		return fmt.Sprint(item["user_id"])
	case item["id"] != nil && item["builtin"] != true:
		return fmt.Sprint(item["id"])
	}
	return fmt.Sprint(item["name"])
}

// walk reads the list at path page by page, limit items a page, following next_before or
// next_after, and returns every item's key in order; items picks a page's items.
func walk(t *testing.T, b *testBundle, path string, limit int, items func(map[string]any) []any) (keys []string, pages int) {
	t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	next := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
	for {
		resp, got := b.get(t, next)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %v", next, got)
		page := items(got)
		require.LessOrEqual(t, len(page), limit, next)
		for _, it := range page {
			keys = append(keys, pageKey(it.(map[string]any)))
		}
		pages++
		require.Less(t, pages, 100, "paging of %s does not end", path)
		switch {
		case got["next_before"] != nil:
			next = fmt.Sprintf("%s%slimit=%d&before=%.0f", path, sep, limit, got["next_before"])
		case got["next_after"] != nil:
			next = fmt.Sprintf("%s%slimit=%d&after=%s", path, sep, limit, url.QueryEscape(got["next_after"].(string)))
		default:
			return keys, pages
		}
	}
}

func itemsOf(got map[string]any) []any {
	items, _ := got["items"].([]any)
	return items
}

// overviewItems flattens an overview page's resources.
func overviewItems(got map[string]any) []any {
	var out []any
	for _, c := range got["clusters"].([]any) {
		for _, e := range c.(map[string]any)["environments"].([]any) {
			out = append(out, e.(map[string]any)["resources"].([]any)...)
		}
	}
	return out
}

// TestListPaging walks every list endpoint two items a page: the pages hold every item of the
// one-page answer, in its order, each once; a limit that is not 1–500 is a 400 naming limit,
// and a cursor that is not one is a 400 naming it.
func TestListPaging(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	pid := b.seed.Project.ID
	root, err := b.st.UserByUsername(ctx, b.pool, "root")
	require.NoError(t, err)
	for i := range 5 {
		b.user(t, fmt.Sprintf("pager-%d", i), "viewer")
		b.token(t, root.ID, nil)
		_, err := b.st.CreateProject(ctx, b.pool, store.Project{Slug: fmt.Sprintf("proj-%d", i), Name: "P"})
		require.NoError(t, err)
		_, err = b.st.CreateEnvironment(ctx, b.pool, store.Environment{ProjectID: pid, Name: fmt.Sprintf("env-%d", i), Kind: "dev", Cluster: "staging"})
		require.NoError(t, err)
		_, err = b.st.CreateRepository(ctx, b.pool, store.NewRepository{ProjectID: pid, Name: fmt.Sprintf("repo-%d", i), URL: "https://git.example.com/r.git"})
		require.NoError(t, err)
		for _, cl := range []string{"prod-eu", "staging"} {
			_, err = b.st.CreateResource(ctx, b.pool, store.NewResource{ProjectID: pid, EnvironmentID: &b.seed.Env.ID, Cluster: cl,
				Kind: []string{"HelmRelease", "Kustomization"}[i%2], Namespace: fmt.Sprintf("ns-%d", i%3), Name: fmt.Sprintf("obj-%d", i)})
			require.NoError(t, err)
		}
		require.NoError(t, b.st.UpsertDiscovered(ctx, b.pool, store.Discovered{Cluster: "prod-eu", Kind: "Kustomization",
			Namespace: fmt.Sprintf("team-%d", i%2), Name: fmt.Sprintf("found-%d", i), Status: "ready"}))
		_, err = b.st.CreateDeployTemplate(ctx, b.pool, store.DeployTemplate{ProjectID: pid, Name: fmt.Sprintf("tmpl-%d", i), Kind: "web-app", Form: json.RawMessage(`{}`)})
		require.NoError(t, err)
		_, err = b.st.InsertNotification(ctx, b.pool, store.Notification{ProjectID: &pid, Severity: "info", Title: fmt.Sprint("n", i)})
		require.NoError(t, err)
		_, err = b.st.CreateReconcileRequest(ctx, b.pool, store.ReconcileRequest{ResourceID: b.seed.HelmRelease.ID})
		require.NoError(t, err)
		_, err = b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{ProjectID: pid, EnvironmentID: b.seed.Env.ID, Method: store.MethodGitopsUI,
			Status: store.DeploySucceeded, App: "web", CommitSHA: fmt.Sprintf("%040x", i+1)})
		require.NoError(t, err)
	}
	hr := fmt.Sprint(b.seed.HelmRelease.ID)
	lists := []struct {
		path   string
		items  func(map[string]any) []any
		cursor string // the cursor parameter, for the bad-cursor case
		seeded bool   // the test made more than two pages of them
	}{
		{"/api/v1/users", itemsOf, "after", true},
		{"/api/v1/tokens", itemsOf, "before", true},
		{"/api/v1/users/pager-0/tokens", itemsOf, "before", false},
		{"/api/v1/projects", itemsOf, "after", true},
		{"/api/v1/projects/webapp/members", itemsOf, "after", true},
		{"/api/v1/projects/webapp/environments", itemsOf, "after", true},
		{"/api/v1/projects/webapp/repositories", itemsOf, "after", true},
		{"/api/v1/projects/webapp/resources", itemsOf, "after", true},
		{"/api/v1/projects/webapp/resources?kind=HelmRelease", itemsOf, "after", true},
		{"/api/v1/resources", itemsOf, "after", true},
		{"/api/v1/projects/webapp/environments/production/resources", itemsOf, "after", true},
		{"/api/v1/projects/webapp/overview", overviewItems, "after", true},
		{"/api/v1/projects/webapp/templates", itemsOf, "after", true},
		{"/api/v1/projects/webapp/notifications", itemsOf, "before", true},
		{"/api/v1/projects/webapp/resources/" + hr + "/reconciles", itemsOf, "before", true},
		{"/api/v1/projects/webapp/resources/" + hr + "/history", itemsOf, "before", false},
		{"/api/v1/projects/webapp/environments/production/apps/web/rollback-targets", itemsOf, "before", true},
		{"/api/v1/projects/webapp/deployments", itemsOf, "before", true},
		{"/api/v1/projects/webapp/audit", itemsOf, "before", false},
		{"/api/v1/audit", itemsOf, "before", false},
		{"/api/v1/projects/webapp/approvals", itemsOf, "before", false},
		{"/api/v1/notifications", itemsOf, "before", false},
		{"/api/v1/clusters", itemsOf, "after", false},
		{"/api/v1/clusters/prod-eu/discovered", itemsOf, "after", true},
	}
	for _, l := range lists {
		t.Run(strings.TrimPrefix(l.path, "/api/v1/"), func(t *testing.T) {
			all, pages := walk(t, b, l.path, 500, l.items)
			require.Equal(t, 1, pages, "one page of 500 holds the whole list")
			keys, pages := walk(t, b, l.path, 2, l.items)
			require.Equal(t, all, keys, "the pages of 2 hold the same items in the same order, each once")
			if l.seeded {
				require.Greater(t, len(all), 2, "the test seeded more than a page of them")
				require.Greater(t, pages, 2, "a list longer than the limit has next pages")
			}

			sep := "?"
			if strings.Contains(l.path, "?") {
				sep = "&"
			}
			for _, bad := range []string{"0", "-1", "501", "ten"} {
				resp, got := b.get(t, l.path+sep+"limit="+bad)
				require.Equal(t, http.StatusBadRequest, resp.StatusCode, "limit=%s: %v", bad, got)
				require.Equal(t, "limit", got["field"], "limit=%s: %v", bad, got)
			}
			badCursor := map[string]string{"before": "x", "after": strings.Repeat("a", 2000)}[l.cursor]
			resp, got := b.get(t, l.path+sep+l.cursor+"="+badCursor)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s=%s: %v", l.cursor, badCursor, got)
			require.Equal(t, l.cursor, got["field"])
		})
	}

	t.Run("object lists refuse a cursor that names no object", func(t *testing.T) {
		for _, path := range []string{"/api/v1/projects/webapp/resources?after=a/b", "/api/v1/clusters/prod-eu/discovered?after=a/b/c/d",
			"/api/v1/projects/webapp/overview?after=a//b/c"} {
			resp, got := b.get(t, path)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, path)
			require.Equal(t, "after", got["field"], path)
		}
	})
	t.Run("rollback targets refuse another environment's deployment as cursor", func(t *testing.T) {
		env, err := b.st.EnvironmentByName(ctx, b.pool, pid, "env-0")
		require.NoError(t, err)
		d, err := b.st.CreateDeployment(ctx, b.pool, store.NewDeployment{ProjectID: pid, EnvironmentID: env.ID, Method: store.MethodManual,
			Status: store.DeploySucceeded, App: "web", CommitSHA: fmt.Sprintf("%040x", 99)})
		require.NoError(t, err)
		resp, got := b.get(t, fmt.Sprintf("/api/v1/projects/webapp/environments/production/apps/web/rollback-targets?before=%d", d.ID))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Equal(t, "before", got["field"])
	})
}
