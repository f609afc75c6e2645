package e2e

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// envRequire makes missing assets fail the suite instead of skipping it.
const envRequire = "FLUXBRIDGE_E2E_REQUIRE"

// rig is the environment every test of the package shares; see startRig.
var rig *Rig

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	// The watch's informers log through controller-runtime, which otherwise complains that no
	// logger was set; fluxbridge's own log is what failures print.
	crlog.SetLogger(logr.Discard())
	assets, err := findAssets()
	if err != nil {
		if os.Getenv(envRequire) == "1" {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping the end-to-end suite: %v (run `make e2e`, which builds them)\n", err)
		return 0
	}
	stopPG, err := storetest.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer stopPG()

	start := time.Now()
	rig, err = startRig(assets)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start the rig: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: rig ready in %s\n", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	if err := rig.Stop(code != 0); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop the rig: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// assets are the prebuilt binaries and manifests the rig runs.
type assets struct {
	kube string // etcd, kube-apiserver (KUBEBUILDER_ASSETS)
	crds string // Flux CRDs
	flux string // source-, kustomize- and helm-controller (FLUX_BIN_DIR)
}

// findAssets locates the assets from the environment or under bin/ at the repository root
// and reports every one that is missing.
func findAssets() (assets, error) {
	root, err := repoRoot()
	if err != nil {
		return assets{}, err
	}
	a := assets{
		kube: envOr("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "kube")),
		crds: envOr("FLUX_CRDS_DIR", filepath.Join(root, "bin", "crds")),
		flux: envOr("FLUX_BIN_DIR", filepath.Join(root, "bin", "flux")),
	}
	var missing []string
	for _, f := range []string{
		filepath.Join(a.kube, "etcd"), filepath.Join(a.kube, "kube-apiserver"),
		filepath.Join(a.crds, "kustomize.toolkit.fluxcd.io_kustomizations.yaml"),
		filepath.Join(a.flux, "source-controller"), filepath.Join(a.flux, "kustomize-controller"),
		filepath.Join(a.flux, "helm-controller"),
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

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// repoRoot is the nearest directory above the working directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
