package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"regexp"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

var (
	// ErrAuth means the remote refused the credentials, the credentials
	// lack permission, the credentials are malformed, or the SSH host key
	// is unknown or does not match known_hosts. It is returned at once,
	// without an internal retry: fix the secret, then run again.
	ErrAuth = errors.New("git authentication failed")

	// ErrRepoNotFound means the remote answered that the repository does
	// not exist (or is hidden from these credentials).
	ErrRepoNotFound = errors.New("git repository not found")

	// ErrBranchNotFound means the repository has commits but none on the
	// requested branch. An empty repository is not this error: the first
	// Apply creates the branch there.
	ErrBranchNotFound = errors.New("git branch not found")

	// ErrRevisionNotFound means a revision given to ReadDir, Restore or
	// IsAncestor does not resolve to a commit in the branch's history.
	ErrRevisionNotFound = errors.New("git revision not found")

	// ErrNonFastForward means every push attempt lost a race against
	// another writer, even after re-applying the changes on the new head.
	// Nothing was force-pushed; running the job again is safe.
	ErrNonFastForward = errors.New("git push rejected as non-fast-forward after retries")

	// ErrPushRejected means the server refused the ref update for a reason
	// other than a race, such as a pre-receive or update hook or a
	// protected branch. Retrying without a change on the server won't help.
	ErrPushRejected = errors.New("git push rejected by the server")

	// ErrInvalidArgument means the caller passed something unusable: a bad
	// URL or branch name, an empty subject, a malformed trailer. Every
	// *PathError also matches it. Retrying won't help.
	ErrInvalidArgument = errors.New("invalid argument")
)

// ConflictError reports that a path holds content fluxbridge must not
// overwrite or delete: a hand-edited managed file (its checksum no longer
// matches), a file without the fluxbridge marker, or a file where a
// directory is needed (or the reverse).
type ConflictError struct {
	// Path is the slash-separated repository path of the file.
	Path string
	// Reason says why in a few words, e.g. "edited by hand".
	Reason string
}

// Error names the file and the reason.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("conflict at %s: %s", e.Path, e.Reason)
}

// PathError reports a path that is unsafe or malformed, found before the
// repository is touched. It matches ErrInvalidArgument with errors.Is.
type PathError struct {
	// Path is the path as the caller gave it.
	Path string
	// Reason says what is wrong, e.g. "contains a .. segment".
	Reason string
}

// Error names the path and the reason.
func (e *PathError) Error() string {
	return fmt.Sprintf("invalid path %q: %s", e.Path, e.Reason)
}

// Unwrap makes a *PathError match ErrInvalidArgument.
func (e *PathError) Unwrap() error { return ErrInvalidArgument }

// errCorrupt marks local cache failures; the cache is wiped and rebuilt.
var errCorrupt = errors.New("git cache corrupt")

// corruptError keeps err's message and marks it as errCorrupt.
type corruptError struct{ err error }

func (e corruptError) Error() string   { return e.err.Error() }
func (e corruptError) Unwrap() []error { return []error{e.err, errCorrupt} }

// corrupt marks err as a local cache failure.
func corrupt(err error) error { return corruptError{err} }

// isNetError reports network failures, which the caller retries later.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// errRace marks a push lost to a concurrent writer; Apply retries it.
var errRace = errors.New("remote branch moved")

// safeError carries a message with secrets masked and the error kinds a
// caller may test for, but not the raw error, whose fields may hold them.
type safeError struct {
	msg   string
	kinds []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.kinds }

// userinfoRE matches the user:pass@ part of URLs inside error text.
var userinfoRE = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@`)

// minSecretLen keeps masking from replacing short common words.
const minSecretLen = 4

// mask removes URL userinfo and each secret from s, as Flux's masktoken
// does for tokens.
func mask(s string, secrets []string) string {
	s = userinfoRE.ReplaceAllString(s, "${1}***@")
	for _, sec := range secrets {
		if len(sec) >= minSecretLen {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

// remoteError turns an error from talking to the remote into one of the
// package's kinds, prefixed by op, with secrets masked.
func remoteError(op string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var kinds []error
	switch {
	case isAuthError(err):
		kinds = append(kinds, ErrAuth)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		kinds = append(kinds, ErrRepoNotFound)
	case isNoMatchingRefSpec(err):
		kinds = append(kinds, ErrBranchNotFound)
	}
	return sanitize(op, err, secrets, kinds...)
}

// sanitize prefixes err with op and masks secrets. The error chain is kept
// when masking changed nothing; otherwise only kinds and the context and
// network errors in the chain stay reachable through errors.Is and As.
func sanitize(op string, err error, secrets []string, kinds ...error) error {
	raw := err.Error()
	msg := strings.Join(strings.Fields(mask(raw, secrets)), " ")
	if mask(raw, secrets) == raw {
		kinds = append(kinds, err)
	} else {
		for _, k := range []error{context.Canceled, context.DeadlineExceeded} {
			if errors.Is(err, k) {
				kinds = append(kinds, k)
			}
		}
		var ne net.Error
		if errors.As(err, &ne) {
			kinds = append(kinds, &safeError{msg: mask(ne.Error(), secrets), kinds: []error{ne}})
		}
	}
	return &safeError{msg: op + ": " + msg, kinds: kinds}
}

// isAuthError reports credential, permission and host key failures.
func isAuthError(err error) bool {
	if errors.Is(err, transport.ErrAuthenticationRequired) ||
		errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrInvalidAuthMethod) {
		return true
	}
	var keyErr *knownhosts.KeyError
	var revErr *knownhosts.RevokedError
	if errors.As(err, &keyErr) || errors.As(err, &revErr) {
		return true
	}
	var fsErr *fs.PathError
	if errors.As(err, &fsErr) {
		return false // a local file error, such as an unwritable cache
	}
	s := strings.ToLower(err.Error())
	for _, m := range []string{"unable to authenticate", "knownhosts:", "host key", "permission denied", "permission to "} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// isNoMatchingRefSpec reports a fetch whose branch the remote lacks.
func isNoMatchingRefSpec(err error) bool {
	var nm git.NoMatchingRefSpecError
	return errors.As(err, &nm)
}

// raceStatuses are receive-pack statuses meaning the ref moved under us.
var raceStatuses = []string{"failed to update ref", "failed to lock", "cannot lock", "non-fast-forward", "fetch first", "stale info", "incorrect old value"}

// isRaceStatus reports whether a receive-pack rejection is a lost race.
func isRaceStatus(status string) bool {
	for _, m := range raceStatuses {
		if strings.Contains(status, m) {
			return true
		}
	}
	return false
}
