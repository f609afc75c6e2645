package jobs_test

import (
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
)

// Credentials of the test Git servers.
const (
	gitUser = "deployer"
	gitPass = "s3cr3t-git-token-7f1c2b9e"
)

// gitServer is a gittestserver on loopback with one repository, "fleet", seeded with a commit.
type gitServer struct {
	*gittestserver.GitServer
	url      string       // of the fleet repository, HTTP(S) or SSH
	requests atomic.Int64 // HTTP requests seen
	creds    secrets.Data // what a client needs, in Flux's secret shape
}

// bare returns the path of the fleet repository on the server's disk.
func (s *gitServer) bare() string { return filepath.Join(s.Root(), "fleet.git") }

// git runs the git CLI on the server's bare repository.
func (s *gitServer) git(tb testing.TB, args ...string) string {
	tb.Helper()
	return gitCLI(tb, s.bare(), args...)
}

// newGitServer starts an HTTP server (HTTPS with basic auth when tls is set); middleware
// runs around every request.
func newGitServer(tb testing.TB, tls bool, middleware ...gittestserver.HTTPMiddleware) *gitServer {
	tb.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(tb, err)
	s := &gitServer{GitServer: gs.AutoCreate()}
	gs.AddHTTPMiddlewares(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.requests.Add(1); h.ServeHTTP(w, r) })
	})
	gs.AddHTTPMiddlewares(middleware...)
	if tls {
		gs.Auth(gitUser, gitPass)
		cert, key := selfSignedCert(tb)
		require.NoError(tb, gs.StartHTTPS(cert, key, cert, "127.0.0.1"))
		s.creds = secrets.Data{"username": []byte(gitUser), "password": []byte(gitPass), "ca.crt": cert}
	} else {
		require.NoError(tb, gs.StartHTTP())
	}
	tb.Cleanup(func() { gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	s.url = gs.HTTPAddress() + "/fleet.git"
	s.seed(tb)
	return s
}

// seed creates the fleet repository with one commit on main, straight on disk.
func (s *gitServer) seed(tb testing.TB) {
	tb.Helper()
	work := tb.TempDir()
	gitCLI(tb, work, "init", "-q", "-b", "main")
	require.NoError(tb, os.WriteFile(filepath.Join(work, "README.md"), []byte("fleet\n"), 0o644))
	gitCLI(tb, work, "add", "-A")
	gitCLI(tb, work, "commit", "-q", "-m", "initial")
	gitCLI(tb, s.Root(), "init", "-q", "--bare", "-b", "main", "fleet.git")
	gitCLI(tb, work, "push", "-q", s.bare(), "main")
}

// newSSHServer starts an SSH git server that accepts one client key, and returns it with
// Flux-style credentials: that key and the server's host key in known_hosts.
func newSSHServer(tb testing.TB) *gitServer {
	tb.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(tb, err)
	s := &gitServer{GitServer: gs.AutoCreate().Auth(gitUser, gitPass).KeyDir(tb.TempDir())}
	s.creds = gittest.StartSSH(tb, gs)
	s.url = gs.SSHAddress() + "/fleet.git"
	s.seed(tb)
	return s
}

// gitCLI runs the git CLI in dir and returns its trimmed output.
func gitCLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	return gittest.CLI(tb, dir, args...)
}

// selfSignedCert returns a PEM certificate and key for 127.0.0.1 that is its own CA.
func selfSignedCert(tb testing.TB) (certPEM, keyPEM []byte) { return gittest.MustSelfSignedCert(tb) }
