package gitops

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

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

func TestCommitWebURL(t *testing.T) {
	const sha = "0123abcd"
	for _, tt := range []struct{ repo, want string }{
		{"https://github.com/acme/fleet.git", "https://github.com/acme/fleet/commit/0123abcd"},
		{"https://bot:token@github.com/acme/fleet", "https://github.com/acme/fleet/commit/0123abcd"},
		{"git@github.com:acme/fleet.git", "https://github.com/acme/fleet/commit/0123abcd"},
		{"ssh://git@gitlab.example.com:2222/group/sub/fleet.git", "https://gitlab.example.com/group/sub/fleet/-/commit/0123abcd"},
		{"https://gitea.example.com/acme/fleet.git/", "https://gitea.example.com/acme/fleet/commit/0123abcd"},
		{"https://codeberg.org/acme/fleet", "https://codeberg.org/acme/fleet/commit/0123abcd"},
		{"https://127.0.0.1:8443/fleet.git", ""},
		{"https://git.example.com/acme/fleet.git", ""},
		{"https://github.com/fleet", ""},
		{"", ""},
	} {
		if got := CommitWebURL(tt.repo, sha); got != tt.want {
			t.Errorf("CommitWebURL(%q) = %q, want %q", tt.repo, got, tt.want)
		}
	}
	if got := CommitWebURL("https://github.com/acme/fleet", ""); got != "" {
		t.Errorf("no commit: %q", got)
	}
}
