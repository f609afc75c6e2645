package flux

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the Secret a GitRepository's secretRef names, as source-controller reads them.
const (
	KeyUsername    = "username"
	KeyPassword    = "password"
	KeyBearerToken = "bearerToken"
	KeyIdentity    = "identity"
	KeyIdentityPub = "identity.pub"
	KeyKnownHosts  = "known_hosts"
)

// ErrSecretNotFound is returned when a credential Secret does not exist.
var ErrSecretNotFound = errors.New("secret not found")

// ValidateGitCredentials checks that data is a Flux Git credential: HTTPS basic auth
// (username and password), an HTTPS bearer token, or SSH (identity and known_hosts, and the
// key's passphrase as password when it is encrypted, as source-controller reads it). Unknown
// keys are refused, so a typo does not silently fail authentication in the cluster.
func ValidateGitCredentials(data map[string][]byte) error {
	for k := range data {
		switch k {
		case KeyUsername, KeyPassword, KeyBearerToken, KeyIdentity, KeyIdentityPub, KeyKnownHosts, "ca.crt":
		default:
			return fmt.Errorf("git credentials: unknown key %q", k)
		}
	}
	sshKey := len(data[KeyIdentity]) > 0
	// With an identity, password is the key's passphrase, not an HTTPS password.
	https := len(data[KeyUsername]) > 0 || (len(data[KeyPassword]) > 0 && !sshKey)
	switch {
	case sshKey && https:
		return errors.New("git credentials: both HTTPS (username/password) and SSH (identity) keys")
	case sshKey && len(data[KeyKnownHosts]) == 0:
		return errors.New("git credentials: SSH identity without known_hosts")
	case https && (len(data[KeyUsername]) == 0 || len(data[KeyPassword]) == 0):
		return errors.New("git credentials: HTTPS needs both username and password")
	case !sshKey && !https && len(data[KeyBearerToken]) == 0:
		return errors.New("git credentials: empty")
	}
	return nil
}

// WithPublicKey returns data with identity.pub added when it holds an SSH identity without
// one: the public half of the key (decrypted with password, its passphrase, if set) in
// authorized_keys format, as `flux create secret git` writes it. Other data is returned as is;
// data itself is never changed. The error says what is wrong with the key, never quoting it.
func WithPublicKey(data map[string][]byte) (map[string][]byte, error) {
	if len(data[KeyIdentity]) == 0 || len(data[KeyIdentityPub]) > 0 {
		return data, nil
	}
	var signer ssh.Signer
	var err error
	if pass := data[KeyPassword]; len(pass) > 0 {
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data[KeyIdentity], pass)
	} else {
		signer, err = ssh.ParsePrivateKey(data[KeyIdentity])
	}
	if err != nil {
		return nil, errors.New("git credentials: the SSH identity is not a usable private key (or the passphrase is wrong)")
	}
	out := make(map[string][]byte, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	out[KeyIdentityPub] = ssh.MarshalAuthorizedKey(signer.PublicKey())
	return out, nil
}

// WriteSecret creates the Secret namespace/name holding exactly data, or rotates it: a
// server-side apply as FieldManager, so keys fluxbridge wrote before and no longer writes are
// removed, and keys others added are kept.
func WriteSecret(ctx context.Context, c client.Client, namespace, name string, data map[string][]byte, labels map[string]string) error {
	s := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if _, err := Apply(ctx, c, s); err != nil {
		return fmt.Errorf("write secret: %w", err)
	}
	return nil
}

// ReadSecret returns the data of the Secret namespace/name, or ErrSecretNotFound.
func ReadSecret(ctx context.Context, c client.Client, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrSecretNotFound)
	case err != nil:
		return nil, fmt.Errorf("read secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

// DeleteSecret deletes the Secret namespace/name; one that is already gone is not an error.
func DeleteSecret(ctx context.Context, c client.Client, namespace, name string) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := c.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secret %s/%s: %w", namespace, name, err)
	}
	return nil
}

// DeleteOwnedSecret deletes the Secret namespace/name only if fluxbridge wrote it for the
// resource with the given ID (its labels say so); a Secret someone else made is kept.
func DeleteOwnedSecret(ctx context.Context, c client.Client, namespace, name, resourceID string) error {
	var s corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read secret %s/%s: %w", namespace, name, err)
	}
	if s.Labels["fluxbridge.io/resource-id"] != resourceID || s.Labels["app.kubernetes.io/managed-by"] != FieldManager {
		return nil
	}
	return DeleteSecret(ctx, c, namespace, name)
}
