package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/sandbox"
)

// Rig is everything the suite runs once for all its tests: the sandbox cluster with the Flux
// controllers and the notification-controller stand-in, the Git server, the Helm repository
// and fluxbridge itself.
type Rig struct {
	*sandbox.Cluster
	Git  *gitServer
	Helm *helmRepo
	App  *app

	dir string
}

// rigStartTimeout bounds the whole start: apiserver, controllers and fluxbridge.
const rigStartTimeout = 4 * time.Minute

// fluxNamespace is where the controllers run and fluxbridge puts its sources and alerting.
const fluxNamespace = sandbox.FluxNamespace

// startRig starts the rig; on error it stops whatever it started.
func startRig(a sandbox.Assets) (r *Rig, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), rigStartTimeout)
	defer cancel()
	r = &Rig{}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Stop(true))
			r = nil
		}
	}()
	if r.dir, err = os.MkdirTemp("", "fluxbridge-e2e-"); err != nil {
		return r, err
	}
	if r.Git, err = startGitServer(r.dir); err != nil {
		return r, fmt.Errorf("git server: %w", err)
	}
	if r.Helm, err = startHelmRepo(); err != nil {
		return r, fmt.Errorf("helm repository: %w", err)
	}
	if r.Cluster, err = sandbox.StartCluster(ctx, sandbox.ClusterOptions{
		KubeAssets: a.Kube, CRDs: a.CRDs, FluxBin: a.Flux, Logf: logf,
	}); err != nil {
		return r, err
	}
	if r.App, err = startApp(ctx, r); err != nil {
		return r, fmt.Errorf("fluxbridge: %w", err)
	}
	return r, nil
}

// Stop stops the controllers (no more events), the relay once its deliveries are done,
// fluxbridge, the cluster and the servers, in that order. With failed set it first prints the
// controllers' error lines and fluxbridge's log tail.
func (r *Rig) Stop(failed bool) error {
	if failed && r.Cluster != nil {
		fmt.Fprintf(os.Stderr, "e2e: controller errors:\n%s", r.Cluster.Errors())
	}
	if failed && r.App != nil {
		fmt.Fprintf(os.Stderr, "e2e: fluxbridge log tail:\n%s\n", r.App.logs.tail(64<<10))
	}
	var errs []error
	if r.Cluster != nil {
		errs = append(errs, r.Cluster.StopControllers())
	}
	if r.App != nil {
		errs = append(errs, r.App.stop())
	}
	if r.Cluster != nil {
		errs = append(errs, r.Cluster.Stop())
	}
	if r.Git != nil {
		r.Git.stop()
	}
	if r.Helm != nil {
		r.Helm.stop()
	}
	if r.dir != "" {
		errs = append(errs, os.RemoveAll(r.dir))
	}
	return errors.Join(errs...)
}

// logf prints the rig's own diagnostics (the relay's failed deliveries) on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}
