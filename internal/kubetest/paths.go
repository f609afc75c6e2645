package kubetest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// assetsEnv names the directory holding the control-plane binaries, as
// envtest and kubebuilder spell it.
const assetsEnv = "KUBEBUILDER_ASSETS"

// RepoRoot returns the nearest directory at or above the working directory
// that holds a go.mod. Tests run in their package's directory, so this is the
// root of the fluxbridge checkout.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// resolveDirs fills in the defaults of AssetsDir and CRDDir and checks that
// the files Start needs are there.
func (o *Options) resolveDirs() error {
	if err := o.defaultDirs(); err != nil {
		return err
	}
	if err := requireFiles(o.AssetsDir, "make kube-assets", "etcd", "kube-apiserver"); err != nil {
		return err
	}
	if o.NoCRDs {
		return nil
	}
	crds, err := filepath.Glob(filepath.Join(o.CRDDir, "*.yaml"))
	if err != nil {
		return fmt.Errorf("list CRDs: %w", err)
	}
	if len(crds) == 0 {
		return fmt.Errorf("no CRDs in %s: run `make crds`", o.CRDDir)
	}
	return nil
}

// defaultDirs fills in the defaults of AssetsDir and CRDDir.
func (o *Options) defaultDirs() error {
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv(assetsEnv)
	}
	if o.AssetsDir == "" || o.CRDDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		if o.AssetsDir == "" {
			o.AssetsDir = filepath.Join(root, "bin", "kube")
		}
		if o.CRDDir == "" {
			o.CRDDir = filepath.Join(root, "bin", "crds")
		}
	}
	return nil
}

// requireFiles checks that dir holds every one of names, and otherwise
// returns an error telling the user which make target builds them.
func requireFiles(dir, makeTarget string, names ...string) error {
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s not found in %s: run `%s`", name, dir, makeTarget)
			}
			return fmt.Errorf("check %s: %w", name, err)
		}
	}
	return nil
}

// DefaultCRDDir returns the directory Start installs the CRDs from when Options.CRDDir is
// empty: bin/crds at the repository root.
func DefaultCRDDir() (string, error) {
	var o Options
	if err := o.defaultDirs(); err != nil {
		return "", err
	}
	return o.CRDDir, nil
}
