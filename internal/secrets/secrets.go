// Package secrets keeps Git credentials out of the database. The database stores only a
// reference (repositories.credential_ref); the credentials themselves live in a Store: a
// directory of 0600 files for a single machine (FileStore), or Kubernetes Secrets in the
// management cluster (a Store the Kubernetes integration adds; references are valid Secret
// names, so the same reference can name the Secret a Flux GitRepository's secretRef points to).
//
// Data has the shape of a Flux GitRepository secret ("username", "password", "bearerToken",
// "identity", "known_hosts", …) and never prints its values.
package secrets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
)

// ErrNotFound means no secret is stored under the reference.
var ErrNotFound = errors.New("secret not found")

// ErrInvalidRef means a reference is not a valid name (see ValidRef).
var ErrInvalidRef = errors.New("invalid secret reference")

// Store reads and writes secrets by reference. Implementations are safe for concurrent use,
// never put secret values in errors, and replace a secret atomically on Put, so a reader sees
// the old or the new data, never a mix.
type Store interface {
	// Get returns the secret under ref, or an error matching ErrNotFound.
	Get(ctx context.Context, ref string) (Data, error)
	// Put stores data under ref, replacing what was there.
	Put(ctx context.Context, ref string, data Data) error
	// Delete removes the secret under ref; deleting a missing secret is not an error.
	Delete(ctx context.Context, ref string) error
}

// Data is a secret's key/value content. It prints as "[redacted]" in every format and
// marshals to JSON as "[redacted]", so logging it by mistake leaks nothing.
type Data map[string][]byte

// String hides the values.
func (Data) String() string { return "[redacted]" }

// GoString hides the values from %#v.
func (Data) GoString() string { return "secrets.Data{[redacted]}" }

// Format hides the values from every fmt verb.
func (Data) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue hides the values from log/slog.
func (Data) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON hides the values from encoding/json and zerolog.
func (Data) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// refRE is a DNS-1123 subdomain: what a Kubernetes Secret name must be, and safe as a file name.
var refRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// ValidRef reports whether ref can name a secret in every backend: lowercase letters, digits,
// '-' and '.', starting and ending with a letter or digit, at most 253 characters, and no "..".
func ValidRef(ref string) bool {
	if !refRE.MatchString(ref) {
		return false
	}
	for i := 0; i+1 < len(ref); i++ {
		if ref[i] == '.' && ref[i+1] == '.' {
			return false
		}
	}
	return true
}

// NewRef returns a fresh reference "<prefix>-<16 random hex digits>". prefix should be a
// valid reference itself (e.g. "repo-webapp"); it is cut so the result stays under 253 bytes.
func NewRef(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	const maxPrefix = 253 - 1 - 16
	if len(prefix) > maxPrefix {
		prefix = prefix[:maxPrefix]
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// checkRef returns an error matching ErrInvalidRef for a bad reference; the reference is
// quoted, which is safe because it is a name, never a secret.
func checkRef(ref string) error {
	if !ValidRef(ref) {
		return fmt.Errorf("%w %q: want a DNS-1123 subdomain name", ErrInvalidRef, ref)
	}
	return nil
}
