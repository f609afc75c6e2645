package flux_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/fluxbridge/fluxbridge/internal/flux"
)

const knownHosts = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHzOGXk3tOq0nJyq2Q9mqvDdT9zG5hC6dA1x2b8x9c0d\n"

// sshKey returns a fresh ed25519 key in OpenSSH PEM format, encrypted with passphrase unless
// it is "", and its public half in authorized_keys format.
func sshKey(t *testing.T, passphrase string) (identity, pub []byte) {
	t.Helper()
	pk, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pk)
	require.NoError(t, err)
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(sshPub)
}

func TestValidateGitCredentials(t *testing.T) {
	id, _ := sshKey(t, "")
	for name, tc := range map[string]struct {
		data map[string][]byte
		err  string
	}{
		"https":        {data: map[string][]byte{"username": []byte("bot"), "password": []byte("pw")}},
		"bearer":       {data: map[string][]byte{"bearerToken": []byte("tok")}},
		"ssh":          {data: map[string][]byte{"identity": id, "known_hosts": []byte(knownHosts)}},
		"ssh with pub": {data: map[string][]byte{"identity": id, "identity.pub": []byte("ssh-ed25519 AAAA"), "known_hosts": []byte(knownHosts)}},
		// source-controller reads an encrypted key's passphrase from password.
		"ssh with passphrase": {data: map[string][]byte{"identity": id, "known_hosts": []byte(knownHosts), "password": []byte("pass")}},
		"ssh and username":    {data: map[string][]byte{"identity": id, "known_hosts": []byte(knownHosts), "username": []byte("bot")}, err: "both HTTPS"},
		"ssh no known_hosts":  {data: map[string][]byte{"identity": id}, err: "without known_hosts"},
		"username only":       {data: map[string][]byte{"username": []byte("bot")}, err: "both username and password"},
		"password only":       {data: map[string][]byte{"password": []byte("pw")}, err: "both username and password"},
		"empty":               {data: map[string][]byte{}, err: "empty"},
		"unknown key":         {data: map[string][]byte{"privateKey": id}, err: `unknown key "privateKey"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := flux.ValidateGitCredentials(tc.data)
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestWithPublicKey(t *testing.T) {
	t.Run("derived from the identity", func(t *testing.T) {
		id, pub := sshKey(t, "")
		in := map[string][]byte{"identity": id, "known_hosts": []byte(knownHosts)}
		out, err := flux.WithPublicKey(in)
		require.NoError(t, err)
		require.Equal(t, string(pub), string(out["identity.pub"]))
		require.Equal(t, id, out["identity"])
		require.Equal(t, knownHosts, string(out["known_hosts"]))
		require.NotContains(t, in, "identity.pub", "the input is not changed")
	})
	t.Run("an encrypted identity, with its passphrase", func(t *testing.T) {
		id, pub := sshKey(t, "s3cret passphrase")
		out, err := flux.WithPublicKey(map[string][]byte{"identity": id, "known_hosts": []byte(knownHosts), "password": []byte("s3cret passphrase")})
		require.NoError(t, err)
		require.Equal(t, string(pub), string(out["identity.pub"]))
		require.Equal(t, "s3cret passphrase", string(out["password"]))
	})
	t.Run("a given identity.pub is kept", func(t *testing.T) {
		id, _ := sshKey(t, "")
		out, err := flux.WithPublicKey(map[string][]byte{"identity": id, "identity.pub": []byte("ssh-ed25519 AAAA given")})
		require.NoError(t, err)
		require.Equal(t, "ssh-ed25519 AAAA given", string(out["identity.pub"]))
	})
	t.Run("https credentials are left alone", func(t *testing.T) {
		in := map[string][]byte{"username": []byte("bot"), "password": []byte("pw")}
		out, err := flux.WithPublicKey(in)
		require.NoError(t, err)
		require.Equal(t, in, out)
	})
	t.Run("a wrong passphrase is refused without quoting the key", func(t *testing.T) {
		id, _ := sshKey(t, "right")
		_, err := flux.WithPublicKey(map[string][]byte{"identity": id, "password": []byte("hunter2-typo")})
		require.ErrorContains(t, err, "not a usable private key")
		require.NotContains(t, err.Error(), "PRIVATE KEY")
		require.NotContains(t, err.Error(), "hunter2")
	})
}
