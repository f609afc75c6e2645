package gitops

import (
	"context"
	"crypto/sha256"
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

func TestMarkLeavesImageSettersToAutomation(t *testing.T) {
	t.Parallel()
	const setter = ` # {"$imagepolicy": "flux-system:webapp-dev-api"}`
	body := "spec:\n  containers:\n  - image: ghcr.io/acme/api:1.4.2" + setter + "\n    name: api\n"
	m := Mark([]byte(body))
	require.Equal(t, unchanged, inspect(m))
	// image-automation-controller moves the tag: still ours, unchanged.
	moved := strings.Replace(string(m), "api:1.4.2", "api:1.5.0", 1)
	require.Equal(t, unchanged, inspect([]byte(moved)))
	require.Equal(t, unchanged, inspect([]byte(strings.Replace(string(m), "  - image: ghcr.io/acme/api:1.4.2", "  - image: \"ghcr.io/acme/api:1.5.0\"", 1))))
	// Anything else is a hand edit, the setter comment included.
	require.Equal(t, edited, inspect([]byte(strings.Replace(moved, "name: api", "name: web", 1))))
	require.Equal(t, edited, inspect([]byte(strings.Replace(string(m), "flux-system:webapp-dev-api", "flux-system:other", 1))))
	require.Equal(t, edited, inspect([]byte(strings.Replace(string(m), setter, "", 1))))
	// Files without setters keep the checksum they always had.
	plain := []byte("apiVersion: v1\nkind: ConfigMap\n")
	sum := sha256.Sum256(plain)
	require.Equal(t, sum, checksum(plain))
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
