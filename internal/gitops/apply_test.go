package gitops

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/stretchr/testify/require"
)

func TestApplyCommitAsSeenByGit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), map[string]string{"README.md": "hello\n"})
	w := newTestWriter(t)

	res, err := w.Apply(context.Background(), repoAt(srv.url("app")), []Change{
		{Path: "apps/api/deploy.yaml", Content: []byte("kind: Deployment\n")},
		{Path: "apps/api/notes.txt", Content: []byte("plain text\n")},
	}, testCI)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, []string{"apps/api/deploy.yaml", "apps/api/notes.txt"}, res.Files)

	require.Equal(t, res.SHA, srv.git(t, "app", "rev-parse", "main"))
	got := srv.git(t, "app", "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", "main")
	require.Equal(t, "Alice Example <alice@example.com>|fluxbridge <bot@fluxbridge.dev>|Deploy api to production", got)
	require.Equal(t, "Deploy api to production\n\nImage ghcr.io/acme/api:1.2.3 requested from the UI.\n\nFluxbridge-Deploy-Id: 42\nRequested-By: alice",
		srv.git(t, "app", "log", "-1", "--format=%B", "main"))
	require.Equal(t, "Fluxbridge-Deploy-Id: 42\nRequested-By: alice",
		srv.git(t, "app", "log", "-1", "--format=%(trailers:only,unfold)", "main"))
	require.Equal(t, testCI.Body+"\n\nFluxbridge-Deploy-Id: 42\nRequested-By: alice", srv.git(t, "app", "log", "-1", "--format=%b", "main"))

	// The YAML file got the marker; the text file was written as given.
	require.Equal(t, strings.TrimSpace(marked("kind: Deployment\n")), srv.git(t, "app", "show", "main:apps/api/deploy.yaml"))
	require.Equal(t, "plain text", srv.git(t, "app", "show", "main:apps/api/notes.txt"))
	require.Equal(t, "hello", srv.git(t, "app", "show", "main:README.md"))
	require.Equal(t, "2", srv.git(t, "app", "rev-list", "--count", "main"))
	srv.git(t, "app", "fsck", "--strict")
}

func TestApplyTwiceMakesOneCommit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	changes := []Change{{Path: "apps/web/deploy.yaml", Content: []byte("replicas: 2\n")}}

	first, err := w.Apply(context.Background(), repoAt(srv.url("app")), changes, testCI)
	require.NoError(t, err)
	second, err := w.Apply(context.Background(), repoAt(srv.url("app")), changes, testCI)
	require.NoError(t, err)
	require.True(t, first.Changed)
	require.False(t, second.Changed)
	require.Equal(t, first.SHA, second.SHA)
	require.Empty(t, second.Files)

	// A fresh Writer (a second worker) agrees, and so does git.
	third, err := newTestWriter(t).Apply(context.Background(), repoAt(srv.url("app")), changes, testCI)
	require.NoError(t, err)
	require.False(t, third.Changed)
	require.Equal(t, "2", srv.git(t, "app", "rev-list", "--count", "main"))
}

func TestApplyEmptyRepositoryCreatesBranch(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	w := newTestWriter(t)

	res, err := w.Apply(context.Background(), repoAt(srv.url("fresh")), []Change{
		{Path: "clusters/prod/kustomization.yaml", Content: []byte("resources: []\n")},
	}, testCI)
	require.NoError(t, err)
	require.True(t, res.Changed)
	require.Equal(t, res.SHA, srv.git(t, "fresh", "rev-parse", "main"))
	require.Equal(t, "1", srv.git(t, "fresh", "rev-list", "--count", "main"))
	require.Empty(t, srv.git(t, "fresh", "log", "-1", "--format=%P", "main"), "first commit has no parent")
}

func TestApplyDeletesManagedFile(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), map[string]string{"keep.txt": "x"})
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	_, err := w.Apply(context.Background(), repo, []Change{{Path: "apps/a/svc.yaml", Content: []byte("a: 1\n")}}, testCI)
	require.NoError(t, err)

	res, err := w.Apply(context.Background(), repo, []Change{{Path: "apps/a/svc.yaml", Delete: true}, {Path: "gone.yaml", Delete: true}}, testCI)
	require.NoError(t, err)
	require.Equal(t, []string{"apps/a/svc.yaml"}, res.Files)
	require.Equal(t, "keep.txt", srv.git(t, "app", "ls-tree", "-r", "--name-only", "main"), "the emptied directory is gone too")
}

func TestApplyBranchAndRepoNotFound(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	change := []Change{{Path: "a.yaml", Content: []byte("a: 1\n")}}

	_, err := w.Apply(context.Background(), Repo{URL: srv.url("app"), Branch: "staging"}, change, testCI)
	require.ErrorIs(t, err, ErrBranchNotFound)

	noAuto, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	require.NoError(t, noAuto.StartHTTP())
	t.Cleanup(func() { noAuto.StopHTTP(); _ = os.RemoveAll(noAuto.Root()) })
	_, err = w.Apply(context.Background(), repoAt(noAuto.HTTPAddress()+"/missing.git"), change, testCI)
	t.Log(err)
	require.ErrorIs(t, err, ErrRepoNotFound)
}

func TestApplyHookRejectionIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(gs *gittestserver.GitServer) {
		gs.InstallUpdateHook("#!/bin/sh\necho 'protected branch' >&2\nexit 1\n")
	})
	w := newTestWriter(t)
	_, err := w.Apply(context.Background(), repoAt(srv.url("locked")), []Change{{Path: "a.yaml", Content: []byte("a: 1\n")}}, testCI)
	t.Log(err)
	require.ErrorIs(t, err, ErrPushRejected)
	require.NotErrorIs(t, err, ErrNonFastForward)
}

func TestApplyRecoversFromCorruptCache(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(path string) bool{
		"every file": func(string) bool { return true },
		"objects only": func(p string) bool {
			return strings.Contains(p, string(filepath.Separator)+"objects"+string(filepath.Separator))
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t)
			seed(t, srv.url("app"), nil)
			cacheDir := t.TempDir()
			repo := repoAt(srv.url("app"))
			_, err := NewWriter(cacheDir).Apply(context.Background(), repo, []Change{{Path: "a.yaml", Content: []byte("a: 1\n")}}, testCI)
			require.NoError(t, err)

			// Damage the cache behind the Writer's back.
			n := 0
			err = filepath.Walk(cacheDir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() && damage(p) {
					n++
					return os.WriteFile(p, []byte("garbage"), 0o600)
				}
				return err
			})
			require.NoError(t, err)
			require.NotZero(t, n)

			res, err := NewWriter(cacheDir).Apply(context.Background(), repo, []Change{{Path: "b.yaml", Content: []byte("b: 1\n")}}, testCI)
			require.NoError(t, err)
			require.True(t, res.Changed)
			require.Equal(t, "a.yaml\nb.yaml", srv.git(t, "app", "ls-tree", "-r", "--name-only", "main"))
		})
	}
}

func TestServerErrorIsReturnedNotRetried(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	var refused atomic.Int64
	srv := newServer(t, func(gs *gittestserver.GitServer) {
		gs.AddHTTPMiddlewares(func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if failing.Load() {
					refused.Add(1)
					http.Error(w, "maintenance", http.StatusServiceUnavailable)
					return
				}
				h.ServeHTTP(w, r)
			})
		})
	})
	seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	_, err := w.ReadDir(context.Background(), repo, "", "")
	require.NoError(t, err)

	failing.Store(true)
	for _, call := range []func() error{
		func() error { _, err := w.ReadDir(context.Background(), repo, "", ""); return err },
		func() error {
			_, err := w.Apply(context.Background(), repo, []Change{{Path: "a.yaml"}}, testCI)
			return err
		},
	} {
		err := call()
		require.Error(t, err)
		for _, kind := range []error{ErrAuth, ErrRepoNotFound, ErrBranchNotFound, ErrNonFastForward, ErrInvalidArgument} {
			require.NotErrorIs(t, err, kind)
		}
		require.Contains(t, err.Error(), "503")
	}
	require.Equal(t, int64(2), refused.Load(), "one request each: no re-clone, no retry")
}

func TestApplyHonoursContext(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	w := newTestWriter(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.Apply(ctx, repoAt(srv.url("app")), []Change{{Path: "a.yaml"}}, testCI)
	require.ErrorIs(t, err, context.Canceled)

	// A call waiting for the cache lock gives up when its ctx ends.
	r, err := w.resolve(repoAt(srv.url("app")))
	require.NoError(t, err)
	c := w.clone(r)
	c.lock <- struct{}{}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = w.Apply(ctx, repoAt(srv.url("app")), []Change{{Path: "a.yaml"}}, testCI)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	<-c.lock
}

func TestApplyIdenticalFilesInOneCommit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	w := newTestWriter(t)
	same := []byte("kind: Namespace\n")
	res, err := w.Apply(context.Background(), repoAt(srv.url("app")), []Change{
		{Path: "a/ns.yaml", Content: same}, {Path: "b/ns.yaml", Content: same}, {Path: "c/ns.yaml", Content: same},
	}, testCI)
	require.NoError(t, err)
	require.Len(t, res.Files, 3)
	srv.git(t, "app", "fsck", "--strict")
}

// TestApplyCreateKeepsExistingFile: a Create change writes a missing file, and leaves an
// existing one alone, whether fluxbridge wrote it or a person edited it, without a conflict.
func TestApplyCreateKeepsExistingFile(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	work := seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	ctx := context.Background()
	repo := repoAt(srv.url("app"))
	ns := Change{Path: "clusters/dev/namespaces/web.yaml", Content: []byte("kind: Namespace\n"), Create: true}

	first, err := w.Apply(ctx, repo, []Change{ns, {Path: "clusters/dev/api/a.yaml", Content: []byte("a: 1\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, []string{"clusters/dev/api/a.yaml", "clusters/dev/namespaces/web.yaml"}, first.Files)
	require.Equal(t, strings.TrimSpace(marked("kind: Namespace\n")), srv.git(t, "app", "show", "main:clusters/dev/namespaces/web.yaml"))

	// Another app writes the same file: nothing changes but its own file.
	second, err := w.Apply(ctx, repo, []Change{ns, {Path: "clusters/dev/web/a.yaml", Content: []byte("a: 2\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, []string{"clusters/dev/web/a.yaml"}, second.Files)

	// A person adds a label: the file is theirs now, kept as edited, and no deploy conflicts.
	gitCLI(t, work, "pull", "-q", srv.url("app"), "main")
	edited := marked("kind: Namespace\n") + "metadata:\n  labels: {team: web}\n"
	writeFile(t, filepath.Join(work, "clusters/dev/namespaces/web.yaml"), edited)
	gitCLI(t, work, "commit", "-q", "-am", "label the namespace")
	gitCLI(t, work, "push", "-q", srv.url("app"), "main")
	third, err := w.Apply(ctx, repo, []Change{ns, {Path: "clusters/dev/api/a.yaml", Content: []byte("a: 3\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, []string{"clusters/dev/api/a.yaml"}, third.Files)
	require.Equal(t, strings.TrimSpace(edited), srv.git(t, "app", "show", "main:clusters/dev/namespaces/web.yaml"))

	// A change cannot both create and delete a path.
	_, err = w.Apply(ctx, repo, []Change{{Path: "x.yaml", Create: true, Delete: true}}, testCI)
	var pe *PathError
	require.ErrorAs(t, err, &pe)
}
