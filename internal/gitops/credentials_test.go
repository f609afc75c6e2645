package gitops

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
)

const (
	testUser = "deployer"
	testPass = "s3cr3t-token-value"
)

// newHTTPSServer starts an HTTPS git server with basic auth and returns
// it with its CA certificate.
func newHTTPSServer(t *testing.T) (*server, []byte) {
	t.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	s := &server{GitServer: gs.AutoCreate().Auth(testUser, testPass)}
	gs.AddHTTPMiddlewares(countRequests(s))
	cert, key := selfSignedCert(t)
	require.NoError(t, gs.StartHTTPS(cert, key, cert, "127.0.0.1"))
	t.Cleanup(func() { gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	return s, cert
}

func TestHTTPSBasicAuth(t *testing.T) {
	t.Parallel()
	srv, ca := newHTTPSServer(t)
	w := newTestWriter(t)
	repo := Repo{URL: srv.url("app"), Branch: "main", Auth: Credentials{
		"username": []byte(testUser), "password": []byte(testPass), "ca.crt": ca,
	}}
	res, err := w.Apply(context.Background(), repo, []Change{{Path: "a.yaml", Content: []byte("a: 1\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, res.SHA, srv.git(t, "app", "rev-parse", "main"))
	require.NoError(t, w.Check(context.Background(), repo, "apps"))
}

func TestWrongPasswordFailsFast(t *testing.T) {
	t.Parallel()
	srv, ca := newHTTPSServer(t)
	w := newTestWriter(t, WithMaxAttempts(5))
	repo := Repo{URL: srv.url("app"), Branch: "main", Auth: Credentials{
		"username": []byte(testUser), "password": []byte("wrong-password-123"), "ca.crt": ca,
	}}
	start := time.Now()
	_, err := w.Apply(context.Background(), repo, []Change{{Path: "a.yaml", Content: []byte("a: 1\n")}}, testCI)
	elapsed := time.Since(start)
	t.Log(err, elapsed, srv.requests.Load())
	require.ErrorIs(t, err, ErrAuth)
	require.NotContains(t, err.Error(), "wrong-password-123")
	require.Less(t, elapsed, 2*time.Second)
	require.LessOrEqual(t, srv.requests.Load(), int64(2), "no retries after a 401")

	for _, call := range []func() error{
		func() error { return w.Check(context.Background(), repo, "") },
		func() error { _, err := w.ReadDir(context.Background(), repo, "", ""); return err },
	} {
		require.ErrorIs(t, call(), ErrAuth)
	}
}

func TestCredentialsOverPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	repo := Repo{URL: "http://127.0.0.1:1/app.git", Branch: "main", Auth: Credentials{
		"username": []byte(testUser), "password": []byte(testPass),
	}}
	_, err := newTestWriter(t).Apply(context.Background(), repo, []Change{{Path: "a.yaml"}}, testCI)
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.NotContains(t, err.Error(), testPass)
}

func TestErrorsHideCredentials(t *testing.T) {
	t.Parallel()
	// Nothing listens on this port: a network error that must not echo
	// the password or token given in the URL or the secret.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	w := newTestWriter(t, WithInsecureHTTP())
	for _, repo := range []Repo{
		{URL: "http://user:" + testPass + "@" + addr + "/app.git", Branch: "main"},
		{URL: "http://" + addr + "/app.git", Branch: "main", Auth: Credentials{"bearerToken": []byte(testPass)}},
	} {
		_, err := w.Apply(context.Background(), repo, []Change{{Path: "a.yaml"}}, testCI)
		require.Error(t, err)
		require.NotContains(t, err.Error(), testPass)
		t.Log(err)
		require.True(t, isNetError(err), "network errors stay recognisable: %v", err)
		require.NotErrorIs(t, err, ErrAuth)
	}
	require.Equal(t, "http://***@host/x: bad "+"***", mask("http://u:"+testPass+"@host/x: bad "+testPass, []string{testPass}))
}

func TestCredentialsNeverPrinted(t *testing.T) {
	t.Parallel()
	c := Credentials{"password": []byte(testPass)}
	repo := Repo{URL: "https://example.com/x.git", Branch: "main", Auth: c}
	js, err := json.Marshal(repo)
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %x %q", repo, repo, repo, c, c, c), string(js)} {
		require.NotContains(t, s, testPass)
		require.NotContains(t, s, fmt.Sprintf("%x", testPass))
	}
}

// sshFixture is an SSH git server that only accepts one client key, plus
// Flux-style credentials for it.
type sshFixture struct {
	srv   *server
	creds Credentials
}

// newSSHServer starts an SSH git server and scans its host key into
// known_hosts as the flux CLI does.
func newSSHServer(t *testing.T) sshFixture {
	t.Helper()
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	s := &server{GitServer: gs.AutoCreate().Auth(testUser, testPass).KeyDir(t.TempDir())}
	return sshFixture{srv: s, creds: Credentials(gittest.StartSSH(t, gs))}
}

func TestSSHWithKnownHosts(t *testing.T) {
	f := newSSHServer(t)
	w := newTestWriter(t)
	repo := Repo{URL: f.srv.SSHAddress() + "/app.git", Branch: "main", Auth: f.creds}
	res, err := w.Apply(context.Background(), repo, []Change{{Path: "apps/a.yaml", Content: []byte("a: 1\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, res.SHA, f.srv.git(t, "app", "rev-parse", "main"))

	// A second deploy over SSH: fetch, commit, push on the cached clone.
	res2, err := w.Apply(context.Background(), repo, []Change{{Path: "apps/b.yaml", Content: []byte("b: 1\n")}}, testCI)
	require.NoError(t, err)
	require.Equal(t, res.SHA, f.srv.git(t, "app", "rev-parse", "main~1"))
	require.Equal(t, res2.SHA, f.srv.git(t, "app", "rev-parse", "main"))
	files, err := w.ReadDir(context.Background(), repo, "", "apps")
	require.NoError(t, err)
	require.Len(t, files, 2)
}

func TestSSHUnknownHostKeyIsAuthError(t *testing.T) {
	f := newSSHServer(t)
	// An RSA key like the server's, so the handshake gets to the check.
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(otherKey)
	require.NoError(t, err)
	host := strings.TrimPrefix(f.srv.SSHAddress(), "ssh://git@")
	h, port, err := net.SplitHostPort(host)
	require.NoError(t, err)

	for name, kh := range map[string][]byte{
		"mismatched key": []byte(fmt.Sprintf("[%s]:%s %s", h, port, ssh.MarshalAuthorizedKey(signer.PublicKey()))),
		"unknown host":   []byte(fmt.Sprintf("[10.9.8.7]:22 %s", ssh.MarshalAuthorizedKey(signer.PublicKey()))),
	} {
		creds := Credentials{"identity": f.creds["identity"], "known_hosts": kh}
		repo := Repo{URL: f.srv.SSHAddress() + "/app.git", Branch: "main", Auth: creds}
		start := time.Now()
		_, err := newTestWriter(t).Apply(context.Background(), repo, []Change{{Path: "a.yaml"}}, testCI)
		t.Log(name, err)
		require.ErrorIs(t, err, ErrAuth, name)
		require.Less(t, time.Since(start), 3*time.Second, name)
	}

	// A key the server doesn't accept is an auth error too.
	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKey(stranger, "")
	require.NoError(t, err)
	creds := Credentials{"identity": pem.EncodeToMemory(block), "known_hosts": f.creds["known_hosts"]}
	_, err = newTestWriter(t).Apply(context.Background(), Repo{URL: f.srv.SSHAddress() + "/app.git", Branch: "main", Auth: creds}, []Change{{Path: "a.yaml"}}, testCI)
	t.Log("stranger key:", err)
	require.ErrorIs(t, err, ErrAuth)

	// SSH without known_hosts is refused before connecting.
	_, err = newTestWriter(t).Apply(context.Background(), Repo{URL: f.srv.SSHAddress() + "/app.git", Branch: "main",
		Auth: Credentials{"identity": f.creds["identity"]}}, []Change{{Path: "a.yaml"}}, testCI)
	require.ErrorIs(t, err, ErrAuth)
}
