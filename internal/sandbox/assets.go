package sandbox

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/kubetest"
)

// Assets are the prebuilt binaries and manifests a sandbox cluster runs.
type Assets struct {
	Kube string // etcd, kube-apiserver, … (KUBEBUILDER_ASSETS)
	CRDs string // the Flux CRDs (FLUX_CRDS_DIR)
	Flux string // source-, kustomize- and helm-controller (FLUX_BIN_DIR)
}

// FindAssets locates the assets from the environment or under bin/ at the repository root
// (where `make rig-links` links them) and reports every one that is missing.
func FindAssets() (Assets, error) {
	a := Assets{Kube: os.Getenv("KUBEBUILDER_ASSETS"), CRDs: os.Getenv("FLUX_CRDS_DIR"), Flux: os.Getenv("FLUX_BIN_DIR")}
	if a.Kube == "" || a.CRDs == "" || a.Flux == "" {
		root, err := kubetest.RepoRoot()
		if err != nil {
			return a, err
		}
		a.Kube = cmp.Or(a.Kube, filepath.Join(root, "bin", "kube"))
		a.CRDs = cmp.Or(a.CRDs, filepath.Join(root, "bin", "crds"))
		a.Flux = cmp.Or(a.Flux, filepath.Join(root, "bin", "flux"))
	}
	var missing []string
	for _, f := range []string{
		filepath.Join(a.Kube, "etcd"), filepath.Join(a.Kube, "kube-apiserver"),
		filepath.Join(a.Kube, "kube-controller-manager"), filepath.Join(a.Kube, "kube-scheduler"), filepath.Join(a.Kube, "kwok"),
		filepath.Join(a.CRDs, "kustomize.toolkit.fluxcd.io_kustomizations.yaml"),
		filepath.Join(a.Flux, "source-controller"), filepath.Join(a.Flux, "kustomize-controller"),
		filepath.Join(a.Flux, "helm-controller"),
	} {
		if _, err := os.Stat(f); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		} else if err != nil {
			return a, err
		}
	}
	if len(missing) > 0 {
		return a, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return a, nil
}
