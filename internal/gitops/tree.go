package gitops

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// fileOp is one planned write or delete.
type fileOp struct {
	content []byte
	delete  bool
	create  bool // only where no file is: see Change.Create
}

// dirOps holds the planned changes under one directory, by name.
type dirOps struct {
	files map[string]fileOp
	dirs  map[string]*dirOps
}

func newDirOps() *dirOps {
	return &dirOps{files: map[string]fileOp{}, dirs: map[string]*dirOps{}}
}

// add records op for the checked path p. A path given twice, or used as
// both a file and a directory, is refused.
func (d *dirOps) add(p string, op fileOp) error {
	segs := strings.Split(p, "/")
	cur := d
	for i, s := range segs[:len(segs)-1] {
		if _, ok := cur.files[s]; ok {
			return &PathError{Path: p, Reason: "its parent " + strings.Join(segs[:i+1], "/") + " is also written as a file"}
		}
		next, ok := cur.dirs[s]
		if !ok {
			next = newDirOps()
			cur.dirs[s] = next
		}
		cur = next
	}
	name := segs[len(segs)-1]
	if _, ok := cur.files[name]; ok {
		return &PathError{Path: p, Reason: "is given twice"}
	}
	if _, ok := cur.dirs[name]; ok {
		return &PathError{Path: p, Reason: "is also used as a directory"}
	}
	cur.files[name] = op
	return nil
}

// planChanges checks every path and marks YAML content, before anything
// touches the repository.
func planChanges(changes []Change) (*dirOps, error) {
	d := newDirOps()
	for _, c := range changes {
		if err := CheckPath(c.Path); err != nil {
			return nil, err
		}
		if c.Delete && c.Create {
			return nil, &PathError{Path: c.Path, Reason: "is both deleted and created"}
		}
		op := fileOp{delete: c.Delete, create: c.Create, content: c.Content}
		if !c.Delete && wantsMark(c.Path) {
			op.content = Mark(c.Content)
		}
		if err := d.add(c.Path, op); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// treeBuilder writes new trees and blobs for planned changes on top of a
// base tree, reading and writing through one object store. It refuses to
// overwrite or delete files that are not fluxbridge's, unchanged.
type treeBuilder struct {
	ctx     context.Context
	st      storer.EncodedObjectStorer
	written []plumbing.Hash // new objects, to push, each once
	seen    map[plumbing.Hash]bool
	changed []string // repository paths that differ from the base
}

// build returns the root tree hash after applying ops to the tree base
// (zero for none). The result equals base when nothing changed.
func (b *treeBuilder) build(base plumbing.Hash, ops *dirOps) (plumbing.Hash, error) {
	h, changed, err := b.rewrite(base, "", ops)
	if err != nil || !changed {
		return base, err
	}
	sort.Strings(b.changed)
	if h.IsZero() { // every file is gone: git still needs a root tree
		return b.storeTree(nil)
	}
	return h, nil
}

// rewrite applies d to the tree h (zero for none) found at prefix. It
// returns the new tree's hash (zero when it ends up empty) and whether
// anything changed.
func (b *treeBuilder) rewrite(h plumbing.Hash, prefix string, d *dirOps) (plumbing.Hash, bool, error) {
	if err := b.ctx.Err(); err != nil {
		return h, false, err
	}
	entries := map[string]object.TreeEntry{}
	if !h.IsZero() {
		t, err := object.GetTree(b.st, h)
		if err != nil {
			return h, false, corrupt(fmt.Errorf("read tree %s: %w", prefix, err))
		}
		for _, e := range t.Entries {
			entries[e.Name] = e
		}
	}
	changed := false
	for _, name := range sortedKeys(d.files) {
		c, err := b.applyFile(entries, name, prefix+name, d.files[name])
		if err != nil {
			return h, false, err
		}
		changed = changed || c
	}
	for _, name := range sortedKeys(d.dirs) {
		full := prefix + name
		var sub plumbing.Hash
		if e, ok := entries[name]; ok {
			if e.Mode != filemode.Dir {
				return h, false, &ConflictError{Path: full, Reason: "is a file, but a directory is needed"}
			}
			sub = e.Hash
		}
		nh, c, err := b.rewrite(sub, full+"/", d.dirs[name])
		if err != nil {
			return h, false, err
		}
		switch {
		case !c:
			continue
		case nh.IsZero():
			delete(entries, name)
		default:
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: nh}
		}
		changed = true
	}
	if !changed {
		return h, false, nil
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, true, nil
	}
	list := make([]object.TreeEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	nh, err := b.storeTree(list)
	return nh, true, err
}

// applyFile applies op to the entry name of a directory, checking the
// marker of what it replaces. It reports whether the entry changed.
func (b *treeBuilder) applyFile(entries map[string]object.TreeEntry, name, full string, op fileOp) (bool, error) {
	e, exists := entries[name]
	var old []byte
	if exists {
		switch e.Mode {
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
		case filemode.Dir:
			return false, &ConflictError{Path: full, Reason: "is a directory, but a file is needed"}
		default:
			return false, &ConflictError{Path: full, Reason: "is a symlink or submodule, not a file"}
		}
		var err error
		if old, err = readBlob(b.st, e.Hash); err != nil {
			return false, err
		}
	}
	switch {
	case op.delete && !exists:
		return false, nil
	case op.create && exists:
		return false, nil // someone's file, or ours: kept either way
	case !op.delete && exists && bytes.Equal(old, op.content):
		return false, nil
	}
	if exists {
		if reason := conflictReason(old); reason != "" {
			return false, &ConflictError{Path: full, Reason: reason}
		}
	}
	b.changed = append(b.changed, full)
	if op.delete {
		delete(entries, name)
		return true, nil
	}
	h, err := b.store(plumbing.BlobObject, op.content)
	if err != nil {
		return false, err
	}
	mode := filemode.Regular
	if exists && e.Mode == filemode.Executable {
		mode = filemode.Executable
	}
	entries[name] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
	return true, nil
}

// storeTree writes a tree with entries in Git's order.
func (b *treeBuilder) storeTree(entries []object.TreeEntry) (plumbing.Hash, error) {
	sort.Sort(object.TreeEntrySorter(entries))
	obj := b.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, fmt.Errorf("encode tree: %w", err)
	}
	return b.put(obj)
}

// store writes one object of type typ holding data.
func (b *treeBuilder) store(typ plumbing.ObjectType, data []byte) (plumbing.Hash, error) {
	obj := b.st.NewEncodedObject()
	obj.SetType(typ)
	obj.SetSize(int64(len(data)))
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, corrupt(err)
	}
	if _, err := w.Write(data); err != nil {
		return plumbing.ZeroHash, corrupt(err)
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, corrupt(err)
	}
	return b.put(obj)
}

// put saves obj and remembers it for the push.
func (b *treeBuilder) put(obj plumbing.EncodedObject) (plumbing.Hash, error) {
	h, err := b.st.SetEncodedObject(obj)
	if err != nil {
		return plumbing.ZeroHash, corrupt(fmt.Errorf("write object: %w", err))
	}
	if !b.seen[h] {
		if b.seen == nil {
			b.seen = map[plumbing.Hash]bool{}
		}
		b.seen[h] = true
		b.written = append(b.written, h)
	}
	return h, nil
}

// readBlob returns a blob's content.
func readBlob(st storer.EncodedObjectStorer, h plumbing.Hash) ([]byte, error) {
	blob, err := object.GetBlob(st, h)
	if err != nil {
		return nil, corrupt(fmt.Errorf("read blob %s: %w", h, err))
	}
	r, err := blob.Reader()
	if err != nil {
		return nil, corrupt(fmt.Errorf("read blob %s: %w", h, err))
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, corrupt(fmt.Errorf("read blob %s: %w", h, err))
	}
	return data, nil
}

// sortedKeys returns m's keys in order, so conflicts are found and
// reported deterministically.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
