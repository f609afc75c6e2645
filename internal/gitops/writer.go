package gitops

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Repo names one branch of a remote repository and how to reach it.
type Repo struct {
	// URL is an https://, http:// or ssh:// URL. Flux-style scp URLs
	// (git@host:org/repo) are refused; write ssh://git@host/org/repo.
	// User info in the URL is used as credentials and never shown.
	URL string
	// Branch is the short branch name, e.g. "main".
	Branch string
	// Auth holds the credentials; nil means anonymous.
	Auth Credentials
}

// Change is one whole-file write or delete. Because it carries the whole
// content, applying it again on a newer head is a rebase.
type Change struct {
	// Path is slash-separated and relative to the repository root.
	Path string
	// Content is the file's full new content; ignored when Delete is set.
	Content []byte
	// Delete removes the file; deleting a missing file is a no-op.
	Delete bool
	// Create writes the file only where there is none: an existing file is
	// kept as it is, whoever wrote it, and is never a conflict. It suits a
	// file several writers share and a person may adapt, such as an
	// environment's Namespace.
	Create bool
}

// Signature is a Git identity.
type Signature struct {
	Name, Email string
}

// CommitInfo describes the commit Apply or Restore makes.
type CommitInfo struct {
	// Author is the requesting user; if empty, Committer is used.
	Author Signature
	// Committer is the bot; it needs a name and an email.
	Committer Signature
	// Subject is the first line; line breaks are folded into spaces.
	Subject string
	// Body follows a blank line; it may be empty.
	Body string
	// Trailers are "Key: value" lines after another blank line, in order,
	// as git interpret-trailers writes them.
	Trailers [][2]string
}

// Result is what a write did.
type Result struct {
	// SHA is the new commit, or the branch head when nothing changed.
	SHA string
	// Changed is false when the tree already matched and no commit was
	// made, e.g. when a job runs twice.
	Changed bool
	// Files are the paths added, modified or deleted, sorted.
	Files []string
}

// Preview is what Apply would do against the current branch head.
type Preview struct {
	// Head is the branch head compared against; empty for an empty
	// repository.
	Head string
	// Files are the paths that would change, sorted.
	Files []string
	// Diff is a unified diff (git diff format); empty when nothing changes.
	Diff string
}

// Option configures a Writer.
type Option func(*Writer)

// WithTimeout bounds each Writer call, including its retries; zero or
// less keeps the default of two minutes. The caller's ctx still applies.
func WithTimeout(d time.Duration) Option {
	return func(w *Writer) {
		if d > 0 {
			w.timeout = d
		}
	}
}

// WithMaxAttempts sets how many pushes Apply and Restore try when other
// writers keep moving the branch; values below 1 keep the default of 5.
func WithMaxAttempts(n int) Option {
	return func(w *Writer) {
		if n >= 1 {
			w.attempts = n
		}
	}
}

// WithBackoff sets the base delay before a retried push; each retry
// waits a random time up to base doubled per attempt. Zero or less keeps
// the default of 50ms.
func WithBackoff(base time.Duration) Option {
	return func(w *Writer) {
		if base > 0 {
			w.backoff = base
		}
	}
}

// WithInsecureHTTP allows sending credentials over plain http://, which
// is refused by default (as Flux's gogit client does).
func WithInsecureHTTP() Option {
	return func(w *Writer) { w.insecureHTTP = true }
}

const (
	defaultTimeout  = 2 * time.Minute       // per Writer call
	defaultAttempts = 5                     // pushes per Apply or Restore
	defaultBackoff  = 50 * time.Millisecond // base delay before a retried push
)

// Writer writes changes to Git branches through cached clones. It is safe
// for concurrent use; calls on the same repository and branch run one at
// a time. Each cache directory must belong to one Writer, because the
// lock guarding it lives in the Writer.
type Writer struct {
	dir          string
	timeout      time.Duration
	attempts     int
	backoff      time.Duration
	insecureHTTP bool

	// beforePush, when set, runs right before each push; tests use it to
	// land a competing push in between.
	beforePush func()

	mu     sync.Mutex
	caches map[string]*clone

	// treeMu guards trees, DirTrees' memory: tree IDs by commit and
	// directory.
	treeMu sync.Mutex
	trees  map[string]string
}

// NewWriter returns a Writer keeping one bare clone per repository and
// branch under cacheDir, which is created on first use. An empty
// cacheDir means a "fluxbridge-gitops" directory under os.TempDir().
func NewWriter(cacheDir string, opts ...Option) *Writer {
	if cacheDir == "" {
		cacheDir = filepath.Join(os.TempDir(), "fluxbridge-gitops")
	}
	w := &Writer{
		dir:      cacheDir,
		timeout:  defaultTimeout,
		attempts: defaultAttempts,
		backoff:  defaultBackoff,
		caches:   map[string]*clone{},
	}
	for _, o := range opts {
		o(w)
	}
	return w
}
