package gitops

import (
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
)

// testCI is the commit info most tests use: a user as author and the bot
// as committer.
var testCI = CommitInfo{
	Author:    Signature{Name: "Alice Example", Email: "alice@example.com"},
	Committer: Signature{Name: "fluxbridge", Email: "bot@fluxbridge.dev"},
	Subject:   "Deploy api to production",
	Body:      "Image ghcr.io/acme/api:1.2.3 requested from the UI.",
	Trailers:  [][2]string{{"Fluxbridge-Deploy-Id", "42"}, {"Requested-By", "alice"}},
}

// server is a gittestserver on loopback plus the bits tests look at.
type server struct {
	*gittestserver.GitServer
	requests atomic.Int64 // HTTP requests seen
}

// newServer starts an auto-creating HTTP git server; setup runs before
// it starts (e.g. to enable auth or install a hook).
func newServer(tb testing.TB, setup ...func(*gittestserver.GitServer)) *server {
	tb.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(tb, err)
	s := &server{GitServer: gs.AutoCreate()}
	gs.AddHTTPMiddlewares(countRequests(s))
	for _, f := range setup {
		f(gs)
	}
	require.NoError(tb, gs.StartHTTP())
	tb.Cleanup(func() {
		gs.StopHTTP()
		_ = os.RemoveAll(gs.Root())
	})
	return s
}

// countRequests counts the HTTP requests s serves.
func countRequests(s *server) gittestserver.HTTPMiddleware {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.requests.Add(1)
			h.ServeHTTP(w, r)
		})
	}
}

// url returns the HTTP URL of the repository name.
func (s *server) url(name string) string { return s.HTTPAddress() + "/" + name + ".git" }

// bare returns the path of the repository name on the server's disk,
// which the git CLI reads to check what was pushed.
func (s *server) bare(name string) string { return filepath.Join(s.Root(), name+".git") }

// git runs the git CLI against the bare repository name.
func (s *server) git(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	return gitCLI(tb, s.bare(name), args...)
}

// seed pushes one commit with files to branch main of repository name
// using the git CLI, and returns a working clone of it.
func seed(tb testing.TB, url string, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	gitCLI(tb, dir, "init", "-q", "-b", "main")
	for p, c := range files {
		writeFile(tb, filepath.Join(dir, p), c)
	}
	gitCLI(tb, dir, "add", "-A")
	gitCLI(tb, dir, "commit", "-q", "--allow-empty", "-m", "initial")
	gitCLI(tb, dir, "push", "-q", url, "main")
	return dir
}

// writeFile writes content at p, creating parent directories.
func writeFile(tb testing.TB, p, content string) {
	tb.Helper()
	require.NoError(tb, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(tb, os.WriteFile(p, []byte(content), 0o644))
}

// repoAt returns a Repo for branch main at url.
func repoAt(url string) Repo { return Repo{URL: url, Branch: "main"} }

// newTestWriter returns a Writer caching under a temporary directory.
func newTestWriter(tb testing.TB, opts ...Option) *Writer {
	tb.Helper()
	return NewWriter(tb.TempDir(), opts...)
}

// marked returns Mark(content) as a string, for expected file contents.
func marked(content string) string { return string(Mark([]byte(content))) }

// gitCLI runs the git CLI in dir and returns its trimmed output.
func gitCLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gittest.CLI(tb, dir, args...)
}

// selfSignedCert returns a PEM certificate and key for 127.0.0.1 that is its own CA.
func selfSignedCert(tb testing.TB) (certPEM, keyPEM []byte) { return gittest.MustSelfSignedCert(tb) }
