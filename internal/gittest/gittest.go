// Package gittest holds what tests need around a loopback Git server: the git CLI run as an
// independent client with a clean configuration, and a self-signed certificate for serving
// HTTPS on 127.0.0.1. It is imported by tests and by the sandbox of `make run`.
package gittest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Env is the environment the git CLI runs with: the user's and the system's configuration are
// ignored, no prompt ever waits for a password, and commits have a fixed identity. extra
// entries (e.g. GIT_SSL_CAINFO=…) are appended.
func Env(extra ...string) []string {
	return append(append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Cli User", "GIT_AUTHOR_EMAIL=cli@example.com",
		"GIT_COMMITTER_NAME=Cli User", "GIT_COMMITTER_EMAIL=cli@example.com",
	), extra...)
}

// Run runs the git CLI in dir with env (nil means Env()) and returns its trimmed output; the
// error carries the command and its output.
func Run(env []string, dir string, args ...string) (string, error) {
	if env == nil {
		env = Env()
	}
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// CLI runs the git CLI in dir with Env() and fails the test if it fails.
func CLI(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := Run(nil, dir, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// SelfSignedCert returns a PEM certificate and key for 127.0.0.1 that is also its own CA,
// valid for an hour around now.
func SelfSignedCert() (certPEM, keyPEM []byte, err error) { return SelfSignedCertFor(time.Hour) }

// SelfSignedCertFor is SelfSignedCert valid for d from an hour ago.
func SelfSignedCertFor(d time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(d),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// MustSelfSignedCert is SelfSignedCert that fails the test on error.
func MustSelfSignedCert(tb testing.TB) (certPEM, keyPEM []byte) {
	tb.Helper()
	c, k, err := SelfSignedCert()
	if err != nil {
		tb.Fatal(err)
	}
	return c, k
}
