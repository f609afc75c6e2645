package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/e2e/ncrelay"
	"github.com/fluxbridge/fluxbridge/internal/kubetest"
)

// Rig is everything the suite runs once for all its tests: the cluster with the Flux
// controllers, the notification-controller stand-in, the Git server, the Helm repository and
// fluxbridge itself.
type Rig struct {
	Env         *kubetest.Env
	Controllers []*kubetest.Process
	Relay       *ncrelay.Relay
	Git         *gitServer
	Helm        *helmRepo
	App         *app

	dir      string
	relaySrv *http.Server
}

// rigStartTimeout bounds the whole start: apiserver, controllers and fluxbridge.
const rigStartTimeout = 4 * time.Minute

// startRig starts the rig; on error it stops whatever it started.
func startRig(a assets) (r *Rig, err error) {
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
	if r.Env, err = kubetest.Start(kubetest.Options{AssetsDir: a.kube, CRDDir: a.crds}); err != nil {
		return r, err
	}
	// kube-controller-manager, kube-scheduler and kwok: the apps' Deployments roll out and
	// become Ready, so Kustomizations with wait: true (fluxbridge's default) can report Ready.
	if err := r.Env.StartWorkloads(ctx); err != nil {
		return r, err
	}
	if err := r.Env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fluxNamespace}}); err != nil {
		return r, fmt.Errorf("create namespace %s: %w", fluxNamespace, err)
	}

	// The stand-in notification-controller, where the controllers post their events.
	r.Relay = ncrelay.New(ncrelay.Options{Client: r.Env.Client, Logf: logf})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	r.relaySrv = &http.Server{Handler: r.Relay, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.relaySrv.Serve(l) }()

	if r.Git, err = startGitServer(r.dir); err != nil {
		return r, fmt.Errorf("git server: %w", err)
	}
	if r.Helm, err = startHelmRepo(); err != nil {
		return r, fmt.Errorf("helm repository: %w", err)
	}
	if r.Controllers, err = startControllers(ctx, r.Env, a.flux, "http://"+l.Addr().String()+"/"); err != nil {
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
	if failed && r.Controllers != nil {
		fmt.Fprintf(os.Stderr, "e2e: controller errors:\n%s", controllerErrors(r.Controllers))
	}
	if failed && r.App != nil {
		fmt.Fprintf(os.Stderr, "e2e: fluxbridge log tail:\n%s\n", r.App.logs.tail(64<<10))
	}
	var errs []error
	for _, p := range r.Controllers {
		errs = append(errs, p.Stop())
	}
	if r.relaySrv != nil {
		_ = r.relaySrv.Close()
		r.Relay.Wait()
	}
	if r.App != nil {
		errs = append(errs, r.App.stop())
	}
	if r.Env != nil {
		errs = append(errs, r.Env.Stop())
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
