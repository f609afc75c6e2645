package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxbridge/fluxbridge/internal/sandbox"
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
	assets, err := sandbox.FindAssets()
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
