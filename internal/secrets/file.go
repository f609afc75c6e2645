package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileStore keeps each secret in its own file under a directory: mode 0600 in a 0700
// directory, JSON with base64 values, replaced atomically (write a temporary file, fsync,
// rename). It suits a single machine (`make run`); several hosts need a shared backend such
// as Kubernetes Secrets. The directory should lie outside any Git checkout that gets pushed.
type FileStore struct {
	dir string
}

// NewFileStore returns a FileStore in dir, creating it with mode 0700 when missing. An
// existing directory that others can read is refused, because every file in it would be
// exposed through the directory's listing and a later chmod mistake.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, errors.New("secret store directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("secret store directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create secret store directory: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("secret store directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret store directory %s has mode %04o; want 0700 (chmod 700 it)", abs, fi.Mode().Perm())
	}
	return &FileStore{dir: abs}, nil
}

// Dir returns the absolute directory the store writes to.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(ref string) string { return filepath.Join(s.dir, ref+".json") }

// Get implements Store.
func (s *FileStore) Get(ctx context.Context, ref string) (Data, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(ref))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secret %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %q: %w", ref, err)
	}
	var d map[string][]byte
	if err := json.Unmarshal(b, &d); err != nil {
		// The JSON error could quote content; say only where it is.
		return nil, fmt.Errorf("secret %q in %s is not valid JSON", ref, s.dir)
	}
	return Data(d), nil
}

// Put implements Store.
func (s *FileStore) Put(ctx context.Context, ref string, data Data) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(map[string][]byte(data))
	if err != nil {
		return fmt.Errorf("encode secret %q: %w", ref, err)
	}
	f, err := os.CreateTemp(s.dir, ".tmp-"+ref+"-*")
	if err != nil {
		return fmt.Errorf("write secret %q: %w", ref, err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("write secret %q: %w", ref, err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write secret %q: %w", ref, err)
	}
	if err := os.Rename(tmp, s.path(ref)); err != nil {
		return fmt.Errorf("write secret %q: %w", ref, err)
	}
	return nil
}

// Delete implements Store.
func (s *FileStore) Delete(ctx context.Context, ref string) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(s.path(ref)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete secret %q: %w", ref, err)
	}
	return nil
}
