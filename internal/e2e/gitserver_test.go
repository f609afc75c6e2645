package e2e

import (
	"io"
	"log"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
)

// Credentials of the Git server: HTTP basic auth over HTTPS.
const (
	gitUser = "fleet-bot"
	gitPass = "e2e-git-password-5c1d8f0a"
)

// gitServer is a loopback Git server over HTTPS with basic auth (fluxcd/pkg/gittestserver);
// fluxbridge, source-controller and the git CLI all reach it the same way.
type gitServer struct {
	srv    *gittestserver.GitServer
	caPEM  []byte
	caFile string
}

// startGitServer starts the server with a self-signed certificate for 127.0.0.1 in dir.
func startGitServer(dir string) (*gitServer, error) {
	// gitkit logs every request with the standard logger.
	log.SetOutput(io.Discard)
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		return nil, err
	}
	srv.AutoCreate().Auth(gitUser, gitPass)
	cert, key, err := gittest.SelfSignedCert()
	if err != nil {
		return nil, err
	}
	if err := srv.StartHTTPS(cert, key, cert, "127.0.0.1"); err != nil {
		return nil, err
	}
	g := &gitServer{srv: srv, caPEM: cert, caFile: filepath.Join(dir, "git-ca.crt")}
	return g, os.WriteFile(g.caFile, cert, 0o600)
}

// stop stops the server and removes its repositories.
func (g *gitServer) stop() {
	g.srv.StopHTTP()
	_ = os.RemoveAll(g.srv.Root())
}

// url is the HTTPS URL of repository name, without credentials.
func (g *gitServer) url(name string) string { return g.srv.HTTPAddress() + "/" + name + ".git" }

// authURL is url with the credentials in it, for the git CLI.
func (g *gitServer) authURL(name string) string {
	u, _ := url.Parse(g.url(name))
	u.User = url.UserPassword(gitUser, gitPass)
	return u.String()
}

// bare is the path of repository name on the server's disk.
func (g *gitServer) bare(name string) string { return filepath.Join(g.srv.Root(), name+".git") }

// initRepo creates repository name with one commit on main holding a README.
func (g *gitServer) initRepo(t testing.TB, name string) {
	t.Helper()
	work := t.TempDir()
	g.git(t, work, "init", "-q", "-b", "main")
	require.NoError(t, os.WriteFile(filepath.Join(work, "README.md"), []byte("fleet of "+name+"\n"), 0o644))
	g.git(t, work, "add", "-A")
	g.git(t, work, "commit", "-q", "-m", "initial")
	g.git(t, g.srv.Root(), "init", "-q", "--bare", "-b", "main", name+".git")
	g.git(t, work, "push", "-q", g.bare(name), "main")
}

// head returns the commit main points to in repository name.
func (g *gitServer) head(t testing.TB, name string) string {
	t.Helper()
	return g.git(t, g.bare(name), "rev-parse", "main")
}

// show returns a file's content at a revision of repository name.
func (g *gitServer) show(t testing.TB, name, rev, path string) string {
	t.Helper()
	return g.git(t, g.bare(name), "show", rev+":"+path)
}

// clone clones repository name over HTTPS with the git CLI, as a developer would.
func (g *gitServer) clone(t testing.TB, name string) *workTree {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	g.git(t, filepath.Dir(dir), "clone", "-q", g.authURL(name), dir)
	return &workTree{g: g, dir: dir}
}

// git runs the git CLI in dir, trusting the server's certificate and ignoring the user's and
// system's configuration.
func (g *gitServer) git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := g.run(dir, args...)
	require.NoError(t, err)
	return out
}

func (g *gitServer) run(dir string, args ...string) (string, error) {
	return gittest.Run(gittest.Env("GIT_SSL_CAINFO="+g.caFile,
		"GIT_AUTHOR_NAME=Dev Eloper", "GIT_AUTHOR_EMAIL=dev@example.com",
		"GIT_COMMITTER_NAME=Dev Eloper", "GIT_COMMITTER_EMAIL=dev@example.com"), dir, args...)
}

// workTree is a developer's clone.
type workTree struct {
	g   *gitServer
	dir string
}

// write writes a file of the clone.
func (w *workTree) write(t testing.TB, path, content string) {
	t.Helper()
	p := filepath.Join(w.dir, filepath.FromSlash(path))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// read reads a file of the clone.
func (w *workTree) read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, filepath.FromSlash(path)))
	require.NoError(t, err)
	return string(b)
}

// commitAndPush commits everything with msg, pulls (rebasing on what fluxbridge pushed in the
// meantime) and pushes main, returning the pushed commit.
func (w *workTree) commitAndPush(t testing.TB, msg string) string {
	t.Helper()
	w.g.git(t, w.dir, "add", "-A")
	w.g.git(t, w.dir, "commit", "-q", "-m", msg)
	w.g.git(t, w.dir, "pull", "-q", "--rebase", "origin", "main")
	w.g.git(t, w.dir, "push", "-q", "origin", "HEAD:main")
	return w.g.git(t, w.dir, "rev-parse", "HEAD")
}

// pull brings the clone up to date.
func (w *workTree) pull(t testing.TB) {
	t.Helper()
	w.g.git(t, w.dir, "pull", "-q", "--rebase", "origin", "main")
}
