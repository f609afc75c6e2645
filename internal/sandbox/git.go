package sandbox

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fluxcd/gitkit"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
)

// GitUser is the user of the sandbox's Git server.
const GitUser = "fleet-bot"

// gitCertValidity is how long the sandbox Git server's self-signed certificate lasts.
const gitCertValidity = 10 * 365 * 24 * time.Hour

// GitServer is a loopback Git server over HTTPS with basic auth (gitkit, the server behind
// fluxcd/pkg/gittestserver). It keeps its repositories, certificate, password and address in
// its directory, so that a repository registered with fluxbridge (URL, CA, password) works
// again on the next run.
type GitServer struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// Password is GitUser's password; CAPEM the server's certificate, its own CA.
	Password string
	CAPEM    []byte

	root string
	srv  *http.Server
}

// StartGit starts the server on the state in dir, creating it on first use.
func StartGit(dir string) (*GitServer, error) {
	g := &GitServer{root: filepath.Join(dir, "repositories")}
	if err := os.MkdirAll(g.root, 0o700); err != nil {
		return nil, err
	}
	cert, err := keep(filepath.Join(dir, "tls.crt"), func() (string, error) {
		c, k, err := gittest.SelfSignedCertFor(gitCertValidity)
		if err != nil {
			return "", err
		}
		return string(c), os.WriteFile(filepath.Join(dir, "tls.key"), k, 0o600)
	})
	if err != nil {
		return nil, fmt.Errorf("git server certificate: %w", err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("git server key: %w", err)
	}
	pair, err := tls.X509KeyPair([]byte(cert), key)
	if err != nil {
		return nil, fmt.Errorf("git server certificate: %w", err)
	}
	g.CAPEM = []byte(cert)
	if g.Password, err = keep(filepath.Join(dir, "password"), func() (string, error) { return rand.Text(), nil }); err != nil {
		return nil, err
	}
	addrFile := filepath.Join(dir, "address")
	if g.Addr, err = keep(addrFile, FreeAddr); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", g.Addr)
	if err != nil {
		return nil, fmt.Errorf("git server: %w (the sandbox's repositories are registered at this address: free it, or remove %s and re-register them)", err, addrFile)
	}

	svc := gitkit.New(gitkit.Config{Dir: g.root, AutoCreate: true, Auth: true})
	svc.AuthFunc = func(c gitkit.Credential, _ *gitkit.Request) (bool, error) {
		return c.Username == GitUser && c.Password == g.Password, nil
	}
	if err := svc.Setup(); err != nil {
		_ = l.Close()
		return nil, err
	}
	g.srv = &http.Server{
		Handler: svc, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = g.srv.ServeTLS(l, "", "") }()
	return g, nil
}

// Stop stops the server; its state stays.
func (g *GitServer) Stop() error { return g.srv.Close() }

// URL is the HTTPS URL of repository name.
func (g *GitServer) URL(name string) string { return "https://" + g.Addr + "/" + name + ".git" }

// InitRepo creates repository name with one commit on main holding files (path → content),
// unless it exists. It reports whether it created it.
func (g *GitServer) InitRepo(name string, files map[string]string) (bool, error) {
	bare := filepath.Join(g.root, name+".git")
	if _, err := os.Stat(bare); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	work, err := os.MkdirTemp("", "sandbox-repo-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)
	env := gittest.Env("GIT_AUTHOR_NAME=fluxbridge sandbox", "GIT_AUTHOR_EMAIL=sandbox@fluxbridge.local",
		"GIT_COMMITTER_NAME=fluxbridge sandbox", "GIT_COMMITTER_EMAIL=sandbox@fluxbridge.local")
	for path, content := range files {
		p := filepath.Join(work, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return false, err
		}
	}
	for _, step := range []struct {
		dir  string
		args []string
	}{
		{work, []string{"init", "-q", "-b", "main"}},
		{work, []string{"add", "-A"}},
		{work, []string{"commit", "-q", "-m", "Start the fleet repository"}},
		{g.root, []string{"init", "-q", "--bare", "-b", "main", name + ".git"}},
		{work, []string{"push", "-q", bare, "main"}},
	} {
		if _, err := gittest.Run(env, step.dir, step.args...); err != nil {
			_ = os.RemoveAll(bare)
			return false, err
		}
	}
	return true, nil
}

// keep returns the trimmed content of file path, writing create's value there on first use.
func keep(path string, create func() (string, error)) (string, error) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v, err := create()
	if err != nil {
		return "", err
	}
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}
