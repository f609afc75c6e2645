package gitops

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// TestConcurrentWriters runs 50 Apply calls at once through 4 Writers
// with separate caches (as 4 worker processes would), each changing its
// own file. Every change must land as its own commit on a linear history.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const (
		writers = 4
		applies = 50
	)
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	repo := repoAt(srv.url("app"))
	// Without the caller's advisory lock this is a push storm: a Writer
	// that just won has a warm cache and often wins again, so some calls
	// needed up to 8 attempts in trial runs; the default of 5 is meant for
	// the occasional outside push, not for this.
	ws := make([]*Writer, writers)
	for i := range ws {
		ws[i] = newTestWriter(t, WithMaxAttempts(30))
	}

	applyAtOnce(t, ws, repo, applies)

	require.Equal(t, strconv.Itoa(applies+1), srv.git(t, "app", "rev-list", "--count", "main"))
	require.Empty(t, srv.git(t, "app", "log", "--merges", "--format=%H", "main"))
	files := strings.Split(srv.git(t, "app", "ls-tree", "-r", "--name-only", "main"), "\n")
	require.Len(t, files, applies)
	subjects := strings.Split(srv.git(t, "app", "log", "--format=%s", "main"), "\n")
	require.Len(t, subjects, applies+1)
	seen := map[string]bool{}
	for _, s := range subjects {
		require.False(t, seen[s], "duplicate commit %q", s)
		seen[s] = true
	}
	srv.git(t, "app", "fsck", "--strict")
}

func TestApplyRebasesOverConcurrentPush(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	work := seed(t, srv.url("app"), map[string]string{"README.md": "hi\n"})
	w := newTestWriter(t)
	pushes := 0
	w.beforePush = func() {
		pushes++
		if pushes == 1 { // someone else lands a commit between our fetch and push
			writeFile(t, filepath.Join(work, "other.txt"), "from the CLI\n")
			gitCLI(t, work, "add", "other.txt")
			gitCLI(t, work, "commit", "-q", "-m", "concurrent change")
			gitCLI(t, work, "push", "-q", srv.url("app"), "main")
		}
	}
	res, err := w.Apply(context.Background(), repoAt(srv.url("app")), []Change{{Path: "apps/x.yaml", Content: []byte("x: 1\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, 2, pushes, "one lost race, one retry")

	require.Equal(t, res.SHA, srv.git(t, "app", "rev-parse", "main"))
	require.Equal(t, "Deploy api to production\nconcurrent change\ninitial", srv.git(t, "app", "log", "--format=%s", "main"))
	require.Empty(t, srv.git(t, "app", "log", "--merges", "--format=%H", "main"))
	require.Equal(t, "README.md\napps/x.yaml\nother.txt", srv.git(t, "app", "ls-tree", "-r", "--name-only", "main"))
}

func TestApplyGivesUpWithNonFastForward(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	work := seed(t, srv.url("app"), nil)
	w := newTestWriter(t, WithMaxAttempts(3))
	pushes := 0
	w.beforePush = func() { // every attempt loses
		pushes++
		gitCLI(t, work, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("race %d", pushes))
		gitCLI(t, work, "push", "-q", srv.url("app"), "main")
	}
	_, err := w.Apply(context.Background(), repoAt(srv.url("app")), []Change{{Path: "x.yaml", Content: []byte("x: 1\n")}}, testCI)
	t.Log(err)
	require.ErrorIs(t, err, ErrNonFastForward)
	require.Equal(t, 3, pushes)
	require.NotContains(t, srv.git(t, "app", "log", "--format=%s", "main"), "Deploy", "nothing of ours landed, nothing was forced")
}

// TestWritersSharingACacheDir: four Writers on one cache directory, as worker processes
// on one volume: each clone is used by one of them at a time (a file lock), each reopens what
// the other changed, and every change lands once with the clone intact.
func TestWritersSharingACacheDir(t *testing.T) {
	t.Parallel()
	const applies = 60
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	repo := repoAt(srv.url("app"))
	dir := t.TempDir()
	ws := []*Writer{NewWriter(dir, WithMaxAttempts(60)), NewWriter(dir, WithMaxAttempts(60)), NewWriter(dir, WithMaxAttempts(60)), NewWriter(dir, WithMaxAttempts(60))}
	applyAtOnce(t, ws, repo, applies)
	require.Equal(t, strconv.Itoa(applies+1), srv.git(t, "app", "rev-list", "--count", "main"))
	srv.git(t, "app", "fsck", "--strict")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var clones []string
	for _, e := range entries {
		if e.IsDir() {
			clones = append(clones, e.Name())
			gitCLI(t, filepath.Join(dir, e.Name()), "fsck", "--no-dangling")
		}
	}
	require.Len(t, clones, 1, "one shared clone")
	// Both read what the other wrote.
	for _, w := range ws {
		files, err := w.ReadDir(context.Background(), repo, "", "apps")
		require.NoError(t, err)
		require.Len(t, files, applies)
	}
}

// TestHungGitServer: a Git server that accepts connections and never answers (over HTTPS and
// SSH) costs a call its timeout and an error; nothing waits for ever.
func TestHungGitServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // accepted, never answered
		}
	}()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(t, err)
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	w := NewWriter(t.TempDir(), WithTimeout(time.Second))
	for _, repo := range []Repo{
		{URL: "https://" + ln.Addr().String() + "/fleet.git", Branch: "main"},
		{URL: "ssh://git@" + ln.Addr().String() + "/fleet.git", Branch: "main", Auth: Credentials{
			"identity":    pem.EncodeToMemory(block),
			"known_hosts": []byte(fmt.Sprintf("[%s]:%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", host, port)),
		}},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := w.Apply(context.Background(), repo, []Change{{Path: "a.yaml", Content: []byte("a\n")}}, testCI)
			done <- err
		}()
		select {
		case err := <-done:
			require.Error(t, err, repo.URL)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: Apply still waiting on a server that never answers", repo.URL)
		}
	}
}

// applyAtOnce runs n Apply calls at once, spread over ws, each changing its own file, and
// requires every one to succeed.
func applyAtOnce(t *testing.T, ws []*Writer, repo Repo, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ci := testCI
			ci.Subject = fmt.Sprintf("deploy %02d", i)
			_, errs[i] = ws[i%len(ws)].Apply(context.Background(), repo, []Change{
				{Path: fmt.Sprintf("apps/app-%02d/deploy.yaml", i), Content: []byte("replicas: " + strconv.Itoa(i) + "\n")},
			}, ci)
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "apply %d", i)
	}
}
