package gitops

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCommitDiff: a pushed commit's files and diff against its parent, as git shows them; a
// commit another writer pushed is fetched; one outside the branch is not found; a known commit
// is read from the cache without asking the server.
func TestCommitDiff(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	dir := seed(t, srv.url("app"), map[string]string{"apps/api/old.yaml": marked("old\n"), "apps/api/deploy.yaml": marked("image: 1.0\n")})
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()
	res, err := w.Apply(ctx, repo, []Change{
		{Path: "apps/api/deploy.yaml", Content: []byte("image: 1.1\n")},
		{Path: "apps/api/new.yaml", Content: []byte("new\n")},
		{Path: "apps/api/old.yaml", Delete: true},
	}, testCI)
	require.NoError(t, err)

	d, err := w.CommitDiff(ctx, repo, res.SHA)
	require.NoError(t, err)
	require.Equal(t, res.SHA, d.SHA)
	require.Equal(t, gitCLI(t, dir, "rev-parse", "HEAD"), d.Parent)
	require.Equal(t, []FileChange{{"apps/api/deploy.yaml", "modified"}, {"apps/api/new.yaml", "added"}, {"apps/api/old.yaml", "deleted"}}, d.Files)
	require.Contains(t, d.Diff, "diff --git a/apps/api/deploy.yaml b/apps/api/deploy.yaml")
	require.Contains(t, d.Diff, "-image: 1.0\n")
	require.False(t, d.Truncated)
	// The same lines git itself prints for that commit.
	show := srv.git(t, "app", "show", "--format=", res.SHA, "--", "apps/api/deploy.yaml")
	for _, l := range strings.Split(show, "\n") {
		if strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			require.Contains(t, d.Diff, l+"\n")
		}
	}

	before := srv.requests.Load()
	_, err = w.CommitDiff(ctx, repo, res.SHA)
	require.NoError(t, err)
	require.Equal(t, before, srv.requests.Load(), "a commit in the cache is read without a fetch")

	// Someone pushes with the CLI: a new writer (an empty cache) fetches it.
	writeFile(t, dir+"/apps/api/cli.yaml", "by hand\n")
	gitCLI(t, dir, "pull", "-q", "--rebase", srv.url("app"), "main")
	gitCLI(t, dir, "add", "-A")
	gitCLI(t, dir, "commit", "-q", "-m", "by hand")
	gitCLI(t, dir, "push", "-q", srv.url("app"), "HEAD:main")
	sha := gitCLI(t, dir, "rev-parse", "HEAD")
	d, err = newTestWriter(t).CommitDiff(ctx, repo, sha)
	require.NoError(t, err)
	require.Equal(t, []FileChange{{"apps/api/cli.yaml", "added"}}, d.Files)

	_, err = w.CommitDiff(ctx, repo, strings.Repeat("ab", 20))
	require.ErrorIs(t, err, ErrRevisionNotFound)
	for _, bad := range []string{"HEAD", res.SHA[:12], strings.ToUpper(res.SHA), "../etc"} {
		_, err = w.CommitDiff(ctx, repo, bad)
		require.ErrorIs(t, err, ErrInvalidArgument, bad)
	}
}
