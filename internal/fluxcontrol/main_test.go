package fluxcontrol_test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// The two clusters every test can use: east holds the management namespace of the credential
// store too.
var east, west *kubetest.Env

// startup is how long the two apiservers took to start, logged by TestClusters.
var startup time.Duration

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	start := time.Now()
	var wg sync.WaitGroup
	var errEast, errWest error
	wg.Add(2)
	go func() { defer wg.Done(); east, errEast = kubetest.Start(kubetest.Options{}) }()
	go func() { defer wg.Done(); west, errWest = kubetest.Start(kubetest.Options{}) }()
	wg.Wait()
	defer func() {
		for _, e := range []*kubetest.Env{east, west} {
			if e != nil {
				_ = e.Stop()
			}
		}
	}()
	if errEast != nil || errWest != nil {
		fmt.Fprintln(os.Stderr, "fluxcontrol: start apiservers:", errEast, errWest)
		return 1
	}
	startup = time.Since(start)
	return storetest.Run(m)
}
