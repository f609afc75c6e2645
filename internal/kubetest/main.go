package kubetest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Run starts an Env with opts, passes it to setup, runs the package's tests
// and stops the Env, returning the exit code for os.Exit. It is meant for
// TestMain, so that a package shares one apiserver:
//
//	var env *kubetest.Env
//
//	func TestMain(m *testing.M) {
//		os.Exit(kubetest.Run(m, kubetest.Options{}, func(e *kubetest.Env) error {
//			env = e
//			return nil
//		}))
//	}
//
// If the Env does not start (for instance because `make kube-assets crds`
// was not run) or setup fails, Run reports why on stderr, runs no test and
// returns 1.
func Run(m *testing.M, opts Options, setup func(*Env) error) int {
	// TestMain runs before the test flags are parsed; testing.Verbose
	// needs them.
	if !flag.Parsed() {
		flag.Parse()
	}
	start := time.Now()
	env, err := Start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "kubetest: apiserver %s ready in %s\n", env.Config.Host, time.Since(start).Round(time.Millisecond))
	}
	code := 1
	if err := setup(env); err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: setup: %v\n", err)
	} else {
		code = m.Run()
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "kubetest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// NewNamespace creates a namespace with a unique name for t and deletes it
// when t ends, so that tests sharing an Env (including parallel ones) do not
// see each other's objects. Without StartWorkloads the deleted namespace
// stays Terminating, which is harmless.
func (e *Env) NewNamespace(t testing.TB) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := e.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled during cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Client.Delete(ctx, ns); err != nil {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}
