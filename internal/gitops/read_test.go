package gitops

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPreview(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()

	// Against an empty repository: everything is new.
	p, err := w.Preview(ctx, repo, []Change{{Path: "apps/a.yaml", Content: []byte("a: 1\n")}})
	require.NoError(t, err)
	require.Empty(t, p.Head)
	require.Equal(t, []string{"apps/a.yaml"}, p.Files)
	require.Contains(t, p.Diff, "+++ b/apps/a.yaml")

	first, err := w.Apply(ctx, repo, []Change{{Path: "apps/a.yaml", Content: []byte("a: 1\nb: 2\n")}}, testCI)
	require.NoError(t, err)

	p, err = w.Preview(ctx, repo, []Change{
		{Path: "apps/a.yaml", Content: []byte("a: 1\nb: 3\n")},
		{Path: "apps/new.yaml", Content: []byte("n: 1\n")},
	})
	require.NoError(t, err)
	require.Equal(t, first.SHA, p.Head)
	require.Equal(t, []string{"apps/a.yaml", "apps/new.yaml"}, p.Files)
	require.Contains(t, p.Diff, "diff --git a/apps/a.yaml b/apps/a.yaml")
	require.Contains(t, p.Diff, "--- a/apps/a.yaml\n+++ b/apps/a.yaml\n")
	require.Contains(t, p.Diff, "-b: 2\n+b: 3\n")
	require.Contains(t, p.Diff, "new file mode 100644")
	require.Equal(t, first.SHA, srv.git(t, "app", "rev-parse", "main"), "preview commits nothing")
	require.Equal(t, "1", srv.git(t, "app", "rev-list", "--count", "main"))

	// A diff git itself accepts: apply it to a clone and compare.
	work := t.TempDir()
	gitCLI(t, work, "clone", "-q", "-b", "main", srv.url("app"), ".")
	writeFile(t, filepath.Join(work, "change.diff"), p.Diff)
	gitCLI(t, work, "apply", "--check", "change.diff")

	same, err := w.Preview(ctx, repo, []Change{{Path: "apps/a.yaml", Content: []byte("a: 1\nb: 2\n")}})
	require.NoError(t, err)
	require.Empty(t, same.Files)
	require.Empty(t, same.Diff)
}

func TestIsAncestor(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()
	a, err := w.Apply(ctx, repo, []Change{{Path: "a.yaml", Content: []byte("a\n")}}, testCI)
	require.NoError(t, err)
	b, err := w.Apply(ctx, repo, []Change{{Path: "b.yaml", Content: []byte("b\n")}}, testCI)
	require.NoError(t, err)

	for _, tt := range []struct {
		anc, desc string
		want      bool
	}{
		{a.SHA, b.SHA, true},
		{b.SHA, a.SHA, false},
		{a.SHA, a.SHA, true},
		{a.SHA[:10], "HEAD", true},
		{"HEAD~1", b.SHA, true},
		{"HEAD", "HEAD~1", false},
	} {
		got, err := w.IsAncestor(ctx, repo, tt.anc, tt.desc)
		require.NoError(t, err)
		require.Equal(t, tt.want, got, "%s..%s", tt.anc, tt.desc)
	}
	_, err = w.IsAncestor(ctx, repo, "0123456789abcdef0123456789abcdef01234567", b.SHA)
	require.ErrorIs(t, err, ErrRevisionNotFound)
	_, err = w.IsAncestor(ctx, repo, "main", b.SHA)
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestReadDirAndRestore(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), map[string]string{"README.md": "hi\n"})
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()

	v1, err := w.Apply(ctx, repo, []Change{
		{Path: "apps/api/deploy.yaml", Content: []byte("image: api:1\n")},
		{Path: "apps/api/svc.yaml", Content: []byte("port: 80\n")},
		{Path: "apps/web/deploy.yaml", Content: []byte("image: web:1\n")},
	}, testCI)
	require.NoError(t, err)
	_, err = w.Apply(ctx, repo, []Change{
		{Path: "apps/api/deploy.yaml", Content: []byte("image: api:2\n")},
		{Path: "apps/api/hpa.yaml", Content: []byte("max: 5\n")},
		{Path: "apps/api/svc.yaml", Delete: true},
		{Path: "apps/web/deploy.yaml", Content: []byte("image: web:2\n")},
	}, testCI)
	require.NoError(t, err)

	old, err := w.ReadDir(ctx, repo, v1.SHA, "apps/api")
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{
		"apps/api/deploy.yaml": []byte(marked("image: api:1\n")),
		"apps/api/svc.yaml":    []byte(marked("port: 80\n")),
	}, old)
	missing, err := w.ReadDir(ctx, repo, v1.SHA, "apps/nothing")
	require.NoError(t, err)
	require.Empty(t, missing)
	_, err = w.ReadDir(ctx, repo, "", "README.md")
	require.ErrorIs(t, err, ErrInvalidArgument, "a file is not a directory")

	ci := testCI
	ci.Subject = "Roll back api to " + v1.SHA[:8]
	res, err := w.Restore(ctx, repo, "apps/api", v1.SHA, ci)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []string{"apps/api/deploy.yaml", "apps/api/hpa.yaml", "apps/api/svc.yaml"}, res.Files)

	require.Empty(t, srv.git(t, "app", "diff", v1.SHA, "main", "--", "apps/api"), "apps/api is back to v1")
	require.Equal(t, strings.TrimSpace(marked("image: web:2\n")), srv.git(t, "app", "show", "main:apps/web/deploy.yaml"), "other dirs untouched")
	require.Equal(t, "apps/api/deploy.yaml\napps/api/svc.yaml", srv.git(t, "app", "ls-tree", "-r", "--name-only", "main", "apps/api"))
	require.Equal(t, "4", srv.git(t, "app", "rev-list", "--count", "main"), "a new commit, no force push")

	again, err := w.Restore(ctx, repo, "apps/api", v1.SHA, ci)
	require.NoError(t, err)
	require.False(t, again.Changed)

	_, err = w.Restore(ctx, repo, "apps/api", "deadbeef", ci)
	require.ErrorIs(t, err, ErrRevisionNotFound)
	_, err = w.ReadDir(ctx, Repo{URL: srv.url("app"), Branch: "nope"}, "", "apps")
	require.ErrorIs(t, err, ErrBranchNotFound)
	empty, err := w.ReadDir(ctx, repoAt(srv.url("empty")), "", "apps")
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), map[string]string{"apps/api/x.yaml": "x", "README.md": "hi"})
	w := newTestWriter(t)
	ctx := context.Background()
	repo := repoAt(srv.url("app"))

	require.NoError(t, w.Check(ctx, repo, "apps/api"), "existing dir")
	require.NoError(t, w.Check(ctx, repo, "apps/new/dir"), "creatable dir")
	require.NoError(t, w.Check(ctx, repo, ""), "repository root")
	require.NoError(t, w.Check(ctx, repoAt(srv.url("empty")), "apps"), "empty repository: the first Apply creates the branch")

	var pe *PathError
	require.ErrorAs(t, w.Check(ctx, repo, "README.md/x"), &pe)
	require.Contains(t, pe.Error(), "README.md is a file")
	require.ErrorAs(t, w.Check(ctx, repo, "../x"), &pe)
	require.ErrorIs(t, w.Check(ctx, Repo{URL: srv.url("app"), Branch: "nope"}, "apps"), ErrBranchNotFound)
	require.ErrorIs(t, w.Check(ctx, Repo{URL: srv.url("app"), Branch: "bad..name"}, "apps"), ErrInvalidArgument)
	require.ErrorIs(t, w.Check(ctx, Repo{URL: "git@github.com:org/repo.git", Branch: "main"}, "apps"), ErrInvalidArgument)
}
