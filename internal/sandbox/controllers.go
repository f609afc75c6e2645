package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/kubetest"
)

// FluxNamespace is where the controllers run (RUNTIME_NAMESPACE) and where fluxbridge puts its
// sources, Provider and Alerts.
const FluxNamespace = "flux-system"

// controllersReadyTimeout bounds the start of the three controllers on a busy machine; they
// start their workers ~1.5 s after launch when idle.
const controllersReadyTimeout = 2 * time.Minute

// controller is one Flux controller binary and what it needs beyond the common flags.
type controller struct {
	name  string
	extra func(env *kubetest.Env) ([]string, error)
}

var controllers = []controller{
	{name: "source-controller", extra: func(env *kubetest.Env) ([]string, error) {
		// source-controller refuses to start unless the storage directory exists; it serves
		// artifacts to the other two at the advertised address.
		dir, err := env.Dir("source-storage")
		if err != nil {
			return nil, err
		}
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		return []string{"--storage-path=" + dir, "--storage-addr=" + addr, "--storage-adv-addr=" + addr}, nil
	}},
	// A failing dependency is looked at again after 5 s instead of 30 s: the e2e dependency test
	// is quick and a sandbox's dependent app follows its dependency within seconds.
	{name: "kustomize-controller", extra: func(*kubetest.Env) ([]string, error) {
		return []string{"--requeue-dependency=5s"}, nil
	}},
	{name: "helm-controller", extra: func(*kubetest.Env) ([]string, error) {
		return []string{"--requeue-dependency=5s"}, nil
	}},
}

// StartControllers runs the Flux controllers as host processes of env, watching all namespaces
// and posting their events to eventsURL, and waits until each has started its workers.
// They stop with env (and the reaper kills them if the test binary dies).
func StartControllers(ctx context.Context, env *kubetest.Env, binDir, eventsURL string) ([]*kubetest.Process, error) {
	var procs []*kubetest.Process
	for _, c := range controllers {
		metrics, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		health, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		extra, err := c.extra(env)
		if err != nil {
			return nil, err
		}
		home, err := env.Dir("home-" + c.name)
		if err != nil {
			return nil, err
		}
		args := append([]string{
			"--watch-all-namespaces",
			"--enable-leader-election=false",
			"--log-encoding=json",
			"--metrics-addr=" + metrics,
			"--health-addr=" + health,
			"--events-addr=" + eventsURL,
		}, extra...)
		p, err := env.StartProcess(kubetest.ProcessSpec{
			Name: c.name, Path: filepath.Join(binDir, c.name), Args: args,
			Env: []string{"KUBECONFIG=" + env.KubeconfigPath(), "RUNTIME_NAMESPACE=" + FluxNamespace, "HOME=" + home},
		})
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	ctx, cancel := context.WithTimeout(ctx, controllersReadyTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = WaitLog(ctx, p, `"msg":"Starting workers"`)
		}()
	}
	wg.Wait()
	return procs, errors.Join(errs...)
}

// WaitLog waits until s appears in p's log, failing early with the log's tail if p exits.
func WaitLog(ctx context.Context, p *kubetest.Process, s string) error {
	for {
		b, err := os.ReadFile(p.LogPath())
		if err == nil && bytes.Contains(b, []byte(s)) {
			return nil
		}
		if exited, werr := p.Exited(); exited {
			return fmt.Errorf("%s exited (%v) before logging %s:\n%s", p.Name(), werr, s, p.LogTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no %s in its log: %w\n%s", p.Name(), s, ctx.Err(), p.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ControllerErrors returns the error lines of the controllers' logs, for failure output.
func ControllerErrors(procs []*kubetest.Process) string {
	var b strings.Builder
	for _, p := range procs {
		data, _ := os.ReadFile(p.LogPath())
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, `"level":"error"`) {
				fmt.Fprintf(&b, "%s: %s\n", p.Name(), line)
			}
		}
	}
	return b.String()
}

// FreeAddr returns a loopback address that was free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
