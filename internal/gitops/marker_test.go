package gitops

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMark(t *testing.T) {
	t.Parallel()
	body := []byte("apiVersion: v1\nkind: ConfigMap\n")
	m := Mark(body)
	require.True(t, strings.HasPrefix(string(m), markerPrefix+checksumPrefix))
	require.True(t, strings.HasSuffix(string(m), string(body)))
	require.Equal(t, m, Mark(m), "marking twice changes nothing")
	require.Equal(t, unchanged, inspect(m))
	require.Equal(t, unmarked, inspect(body))
	require.Equal(t, edited, inspect(append(m, "extra: true\n"...)))
	require.Equal(t, edited, inspect([]byte(markerPrefix+"\nkind: x\n")), "marker without checksum")
	require.Equal(t, unchanged, inspect(Mark(nil)), "empty body")
	stale := strings.Replace(string(m), "ConfigMap", "Secret", 1)
	require.Equal(t, edited, inspect([]byte(stale)))
	require.Equal(t, unchanged, inspect(Mark([]byte(stale))), "re-marking fixes a stale checksum")
}

func TestConflicts(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	work := seed(t, srv.url("app"), map[string]string{"apps/legacy.yaml": "kind: Legacy\n", "apps/dir/x": "x"})
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()
	_, err := w.Apply(ctx, repo, []Change{{Path: "apps/api.yaml", Content: []byte("replicas: 1\n")}}, testCI)
	require.NoError(t, err)

	// Someone edits our file by hand and pushes with the CLI.
	gitCLI(t, work, "pull", "-q", "--ff-only", srv.url("app"), "main")
	edited := strings.Replace(srv.git(t, "app", "show", "main:apps/api.yaml"), "replicas: 1", "replicas: 9", 1)
	writeFile(t, filepath.Join(work, "apps/api.yaml"), edited+"\n")
	gitCLI(t, work, "commit", "-q", "-am", "hotfix by hand")
	gitCLI(t, work, "push", "-q", srv.url("app"), "main")
	head := srv.git(t, "app", "rev-parse", "main")

	tests := []struct {
		name   string
		change Change
		path   string
	}{
		{"overwrite hand-edited", Change{Path: "apps/api.yaml", Content: []byte("replicas: 2\n")}, "apps/api.yaml"},
		{"delete hand-edited", Change{Path: "apps/api.yaml", Delete: true}, "apps/api.yaml"},
		{"overwrite unmarked", Change{Path: "apps/legacy.yaml", Content: []byte("kind: New\n")}, "apps/legacy.yaml"},
		{"delete unmarked", Change{Path: "apps/legacy.yaml", Delete: true}, "apps/legacy.yaml"},
		{"file where a directory is", Change{Path: "apps/dir", Content: []byte("x")}, "apps/dir"},
		{"directory where a file is", Change{Path: "apps/legacy.yaml/x.yaml", Content: []byte("x")}, "apps/legacy.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.Apply(ctx, repo, []Change{{Path: "apps/fine.yaml", Content: []byte("ok\n")}, tt.change}, testCI)
			var ce *ConflictError
			require.True(t, errors.As(err, &ce), "got %v", err)
			require.Equal(t, tt.path, ce.Path)
			require.Contains(t, err.Error(), tt.path)
			_, err = w.Preview(ctx, repo, []Change{tt.change})
			require.ErrorAs(t, err, &ce)
		})
	}
	require.Equal(t, head, srv.git(t, "app", "rev-parse", "main"), "no conflicting change was committed")

	// Identical content is never a conflict, even without a marker.
	res, err := w.Apply(ctx, repo, []Change{{Path: "apps/dir/x", Content: []byte("x")}}, testCI)
	require.NoError(t, err)
	require.False(t, res.Changed)
}

func TestPathAttacks(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	w := newTestWriter(t)
	tests := []struct {
		name string
		path string
	}{
		{"empty", ""},
		{"absolute", "/etc/passwd"},
		{"dot-dot", "../outside.yaml"},
		{"inner dot-dot", "apps/../../x.yaml"},
		{"dot segment", "apps/./x.yaml"},
		{"backslash", `apps\x.yaml`},
		{"windows traversal", `..\..\x.yaml`},
		{"empty segment", "apps//x.yaml"},
		{"trailing slash", "apps/"},
		{"git dir", ".git/config"},
		{"nested git dir", "apps/.git/hooks/pre-commit"},
		{"git dir upper case", "apps/.GIT/config"},
		{"control character", "apps/x\n.yaml"},
		{"nul byte", "apps/x\x00.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := w.Apply(context.Background(), repoAt(srv.url("attack")), []Change{{Path: tt.path, Content: []byte("x")}}, testCI)
			var pe *PathError
			require.ErrorAs(t, err, &pe)
			require.ErrorIs(t, err, ErrInvalidArgument)
			_, err = w.Preview(context.Background(), repoAt(srv.url("attack")), []Change{{Path: tt.path, Delete: true}})
			require.ErrorAs(t, err, &pe)
		})
	}
	require.Zero(t, srv.requests.Load(), "bad paths are refused before touching the repository")

	for _, dir := range []string{"../x", "/abs", "a//b", ".git", `a\b`} {
		require.ErrorIs(t, w.Check(context.Background(), repoAt(srv.url("attack")), dir), ErrInvalidArgument, dir)
		_, err := w.ReadDir(context.Background(), repoAt(srv.url("attack")), "", dir)
		require.ErrorIs(t, err, ErrInvalidArgument, dir)
	}
	_, err := w.Apply(context.Background(), repoAt(srv.url("attack")), []Change{{Path: "a/b", Content: []byte("x")}, {Path: "a", Content: []byte("y")}}, testCI)
	require.ErrorIs(t, err, ErrInvalidArgument, "a path used as file and directory")
	_, err = w.Apply(context.Background(), repoAt(srv.url("attack")), []Change{{Path: "a", Content: []byte("x")}, {Path: "a", Delete: true}}, testCI)
	require.ErrorIs(t, err, ErrInvalidArgument, "a path given twice")
	require.Zero(t, srv.requests.Load())
}

func TestCommitMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ci   CommitInfo
		want string
		err  bool
	}{
		{"all parts", CommitInfo{Subject: "Deploy", Body: "Why.\n", Trailers: [][2]string{{"A", "1"}, {"B-C", "2"}}}, "Deploy\n\nWhy.\n\nA: 1\nB-C: 2\n", false},
		{"subject only", CommitInfo{Subject: "  Deploy  "}, "Deploy\n", false},
		{"no body", CommitInfo{Subject: "Deploy", Trailers: [][2]string{{"A", "1"}}}, "Deploy\n\nA: 1\n", false},
		{"multi-line subject folded", CommitInfo{Subject: "Deploy\nnow"}, "Deploy now\n", false},
		{"multi-line trailer value folded", CommitInfo{Subject: "D", Trailers: [][2]string{{"A", "x\ny"}}}, "D\n\nA: x y\n", false},
		{"empty subject", CommitInfo{Subject: " \n"}, "", true},
		{"trailer key with space", CommitInfo{Subject: "D", Trailers: [][2]string{{"Bad Key", "x"}}}, "", true},
		{"trailer key with colon", CommitInfo{Subject: "D", Trailers: [][2]string{{"A:", "x"}}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ci.message()
			if tt.err {
				require.ErrorIs(t, err, ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
