package jobs_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	fluxssh "github.com/fluxcd/pkg/ssh"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/fluxbridge/fluxbridge/internal/secrets"
)

// Credentials of the test Git servers.
const (
	gitUser = "deployer"
	gitPass = "s3cr3t-git-token-7f1c2b9e"
)

// gitEnv keeps the user's and system's git config out of the CLI runs.
var gitEnv = append(os.Environ(),
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=Cli User", "GIT_AUTHOR_EMAIL=cli@example.com",
	"GIT_COMMITTER_NAME=Cli User", "GIT_COMMITTER_EMAIL=cli@example.com",
)

// gitCLI runs the git CLI in dir and returns its trimmed output.
func gitCLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv
	out, err := cmd.CombinedOutput()
	require.NoError(tb, err, "git %s: %s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

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
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	require.NoError(tb, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(tb, err)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	gs, err := gittestserver.NewTempGitServer()
	require.NoError(tb, err)
	s := &gitServer{GitServer: gs.AutoCreate().Auth(gitUser, gitPass).KeyDir(tb.TempDir())}
	// The lookup is a package variable of gittestserver: one SSH test per package at a time.
	gs.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != authorized {
			return nil, errors.New("unknown key")
		}
		return &gitkit.PublicKey{Id: "deployer"}, nil
	})
	require.NoError(tb, gs.StartHTTP())
	require.NoError(tb, gs.ListenSSH())
	go func() { _ = gs.StartSSH() }()
	tb.Cleanup(func() { _ = gs.StopSSH(); gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	host := strings.TrimPrefix(gs.SSHAddress(), "ssh://git@")
	knownHosts, err := fluxssh.ScanHostKey(host, 5*time.Second, nil, false)
	require.NoError(tb, err)
	s.url = gs.SSHAddress() + "/fleet.git"
	s.creds = secrets.Data{"identity": pem.EncodeToMemory(block), "identity.pub": ssh.MarshalAuthorizedKey(sshPub), "known_hosts": knownHosts}
	s.seed(tb)
	return s
}

// selfSignedCert returns a PEM certificate and key for 127.0.0.1 that is its own CA.
func selfSignedCert(tb testing.TB) (certPEM, keyPEM []byte) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(tb, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(tb, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// strangerKnownHosts returns a known_hosts line for the SSH server at sshURL with a key that
// is not the server's, as after a host key change or a man in the middle.
func strangerKnownHosts(tb testing.TB, sshURL string) []byte {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	key, err := ssh.NewPublicKey(pub)
	require.NoError(tb, err)
	hostport := strings.TrimSuffix(strings.TrimPrefix(sshURL, "ssh://git@"), "/fleet.git")
	host, port, err := net.SplitHostPort(hostport)
	require.NoError(tb, err)
	return []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(key)))
}
