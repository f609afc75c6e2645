package gitops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"golang.org/x/sys/unix"
)

const (
	// objectCacheBytes bounds the decoded-object cache of one clone.
	objectCacheBytes = 16 * cache.MiByte // 16 MiB
	// maxPacks is how many packfiles (one per fetch that brought objects)
	// a clone may gather before it is deleted and cloned afresh, since
	// lookups scan each.
	maxPacks = 64 // packfiles
)

// clone is one cached bare clone of a repository branch.
type clone struct {
	lock  chan struct{} // holds a token while in use; waits honour ctx
	dir   string
	repo  *git.Repository // nil until opened
	stamp string          // what this process last wrote into the lock file
}

// clone returns the cache entry for r, keyed by a hash of URL and branch.
func (w *Writer) clone(r *remote) *clone {
	sum := sha256.Sum256([]byte(r.url + "\x00" + r.branch.String()))
	key := hex.EncodeToString(sum[:16])
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.caches[key]
	if !ok {
		c = &clone{lock: make(chan struct{}, 1), dir: filepath.Join(w.dir, key)}
		w.caches[key] = c
	}
	return c
}

// withClone runs fn on r's cached clone while holding its lock. If fn
// reports a corrupt cache, the clone is deleted and fn runs once more on
// a fresh one.
func (w *Writer) withClone(ctx context.Context, r *remote, fn func(*git.Repository) error) error {
	c := w.clone(r)
	select {
	case c.lock <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for cache of %s: %w", r.url, ctx.Err())
	}
	defer func() { <-c.lock }()
	unlock, err := c.lockDir(ctx)
	if err != nil {
		return fmt.Errorf("wait for cache of %s: %w", r.url, err)
	}
	defer func() {
		c.pruneIfLarge()
		unlock()
	}()

	for try := 0; ; try++ {
		g, err := c.open()
		if err == nil {
			err = fn(g)
		}
		if try == 0 && errors.Is(err, errCorrupt) && ctx.Err() == nil {
			if rmErr := c.wipe(); rmErr != nil {
				return rmErr
			}
			continue
		}
		return err
	}
}

// open returns the clone's repository, initialising an empty bare one if
// there is none and replacing one that cannot be opened or has too many
// packfiles.
func (c *clone) open() (*git.Repository, error) {
	if c.repo != nil {
		return c.repo, nil
	}
	if packs, _ := filepath.Glob(filepath.Join(c.dir, "objects", "pack", "*.pack")); len(packs) > maxPacks {
		if err := c.wipe(); err != nil {
			return nil, err
		}
	}
	g, err := git.Open(c.storage(), nil)
	if err != nil && !errors.Is(err, git.ErrRepositoryNotExists) {
		if err := c.wipe(); err != nil { // unreadable: start over
			return nil, err
		}
	}
	if err != nil {
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			return nil, fmt.Errorf("create cache dir: %w", err)
		}
		if g, err = git.Init(c.storage(), nil); err != nil {
			return nil, fmt.Errorf("init cache in %s: %w", c.dir, err)
		}
	}
	c.repo = g
	return g, nil
}

// storage returns filesystem storage for the clone. go-git's
// ExclusiveAccess option is left off: it re-lists every loose object after
// each write, which made Apply slower as the cache grew.
func (c *clone) storage() *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(c.dir), cache.NewObjectLRU(objectCacheBytes))
}

// wipe deletes the clone from disk and memory.
func (c *clone) wipe() error {
	c.repo = nil
	if err := os.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("delete corrupt cache %s: %w", c.dir, err)
	}
	return nil
}

// pruneIfLarge drops the open handle when a fetch pushed the packfile
// count over maxPacks, so the next open starts afresh.
func (c *clone) pruneIfLarge() {
	if packs, _ := filepath.Glob(filepath.Join(c.dir, "objects", "pack", "*.pack")); len(packs) > maxPacks {
		c.repo = nil
	}
}

// lockPoll is how often a process waiting for another's cache lock tries again.
const lockPoll = 20 * time.Millisecond

// lockDir takes an exclusive flock on the clone's lock file, so that processes sharing one
// cache directory (two worker replicas on one volume) use a clone one at a time; the wait
// honours ctx. When another process held it since this one did (the file's stamp is not
// ours), the open repository is dropped: its pack list may no longer match the disk.
func (c *clone) lockDir(ctx context.Context) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(c.dir), 0o700); err != nil {
		return nil, fmt.Errorf("create cache dir: %w", err)
	}
	f, err := os.OpenFile(c.dir+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock cache: %w", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(lockPoll):
		}
	}
	buf := make([]byte, 64)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != c.stamp {
		c.repo = nil
	}
	return func() {
		c.stamp = fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano())
		if f.Truncate(0) != nil {
			c.stamp = "" // unknown: reopen next time
		} else if _, err := f.WriteAt([]byte(c.stamp), 0); err != nil {
			c.stamp = ""
		}
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		_ = f.Close()
	}, nil
}
