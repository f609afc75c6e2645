package gitops

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
)

// trailerKeyRE is what git interpret-trailers accepts as a token.
var trailerKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]*$`)

// message renders a commit message: subject, blank line, body, blank
// line, then one "Key: value" trailer per line. Empty parts and their
// blank lines are left out; the message ends with a newline.
func (ci CommitInfo) message() (string, error) {
	subject := oneLine(ci.Subject)
	if subject == "" {
		return "", fmt.Errorf("commit subject is empty: %w", ErrInvalidArgument)
	}
	parts := []string{subject}
	if body := strings.TrimSpace(strings.ReplaceAll(ci.Body, "\r\n", "\n")); body != "" {
		parts = append(parts, body)
	}
	if len(ci.Trailers) > 0 {
		lines := make([]string, 0, len(ci.Trailers))
		for _, t := range ci.Trailers {
			if !trailerKeyRE.MatchString(t[0]) {
				return "", fmt.Errorf("trailer key %q: %w", t[0], ErrInvalidArgument)
			}
			lines = append(lines, t[0]+": "+oneLine(t[1]))
		}
		parts = append(parts, strings.Join(lines, "\n"))
	}
	return strings.Join(parts, "\n\n") + "\n", nil
}

// signatures returns the author and committer for a commit made at now.
// An empty Author falls back to the Committer; the Committer needs both
// a name and an email.
func (ci CommitInfo) signatures(now time.Time) (author, committer object.Signature, err error) {
	c := ci.Committer
	if strings.TrimSpace(c.Name) == "" || strings.TrimSpace(c.Email) == "" {
		return author, committer, fmt.Errorf("committer needs a name and an email: %w", ErrInvalidArgument)
	}
	a := ci.Author
	if strings.TrimSpace(a.Name) == "" && strings.TrimSpace(a.Email) == "" {
		a = c
	}
	sig := func(s Signature) object.Signature {
		return object.Signature{Name: angleless(s.Name), Email: angleless(s.Email), When: now}
	}
	return sig(a), sig(c), nil
}

// oneLine trims s and folds its line breaks into spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// angleless folds s to one line and drops the angle brackets that would
// break the "Name <email>" header of a commit.
func angleless(s string) string {
	return oneLine(strings.NewReplacer("<", "", ">", "").Replace(s))
}
