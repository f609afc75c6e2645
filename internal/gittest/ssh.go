package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/gitkit"
	"github.com/fluxcd/pkg/gittestserver"
	fluxssh "github.com/fluxcd/pkg/ssh"
	"golang.org/x/crypto/ssh"
)

// StartSSH starts gs over HTTP and SSH, accepting one freshly generated client key, and
// returns Flux-style credentials for it: the key (identity, identity.pub) and the server's host
// key scanned into known_hosts, as the flux CLI does. The servers stop when the test ends.
// gittestserver keeps the key lookup in a package variable: one SSH server per test binary at
// a time.
func StartSSH(tb testing.TB, gs *gittestserver.GitServer) map[string][]byte {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(tb, err)
	block, err := ssh.MarshalPrivateKey(priv, "")
	must(tb, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(tb, err)
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	gs.PublicKeyLookupFunc(func(content string) (*gitkit.PublicKey, error) {
		if content != authorized {
			return nil, errors.New("unknown key")
		}
		return &gitkit.PublicKey{Id: "deployer"}, nil
	})
	must(tb, gs.StartHTTP())
	must(tb, gs.ListenSSH())
	go func() { _ = gs.StartSSH() }()
	// The SSH listener is left open until the test binary exits: gitkit's Serve reads its
	// listener field without a lock, so StopSSH right after a short test races it (a nil
	// listener panic) when Serve has not reached Accept yet.
	tb.Cleanup(func() { gs.StopHTTP(); _ = os.RemoveAll(gs.Root()) })
	host := strings.TrimPrefix(gs.SSHAddress(), "ssh://git@")
	knownHosts, err := fluxssh.ScanHostKey(host, 5*time.Second, nil, false)
	must(tb, err)
	return map[string][]byte{
		"identity":     pem.EncodeToMemory(block),
		"identity.pub": ssh.MarshalAuthorizedKey(sshPub),
		"known_hosts":  knownHosts,
	}
}

// StrangerKnownHosts returns a known_hosts line for the SSH server of gs with a key that is not
// the server's, as after a host key change or a man in the middle.
func StrangerKnownHosts(tb testing.TB, gs *gittestserver.GitServer) []byte {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	must(tb, err)
	key, err := ssh.NewPublicKey(pub)
	must(tb, err)
	host, port, err := net.SplitHostPort(strings.TrimPrefix(gs.SSHAddress(), "ssh://git@"))
	must(tb, err)
	return []byte(fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(key)))
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}
