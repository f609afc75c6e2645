// Package sandbox runs a local Kubernetes cluster with Flux for fluxbridge to manage: the
// real kube-apiserver and etcd with kube-controller-manager, kube-scheduler and kwok (through
// internal/kubetest), source-, kustomize- and helm-controller as host processes, and ncrelay
// standing in for notification-controller (which cannot be built from the module proxy). The
// end-to-end suite runs its tests on it, and `make run` gives it to newcomers as the cluster
// to deploy to, next to a loopback Git server (git.go) holding their fleet repository.
//
// The binaries are built by the Makefile (`make rig-links`) into a cache outside the clone;
// nothing here downloads or builds anything.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/ncrelay"
)

// ClusterOptions shape StartCluster.
type ClusterOptions struct {
	// KubeAssets holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and
	// kwok-stages/; CRDs the Flux CRDs; FluxBin the Flux controllers.
	KubeAssets, CRDs, FluxBin string
	// Dir keeps the cluster's state across runs (kubetest.Options.Dir); empty for a cluster
	// that Stop removes.
	Dir string
	// Logf receives the relay's diagnostics (failed deliveries); nil drops them.
	Logf func(format string, args ...any)
}

// Cluster is a running sandbox cluster.
type Cluster struct {
	Env         *kubetest.Env
	Controllers []*kubetest.Process
	// Relay is the notification-controller stand-in; the controllers post their events to it
	// and it forwards them by the cluster's Alerts and Providers.
	Relay *ncrelay.Relay

	relaySrv *http.Server
}

// StartCluster starts the cluster and waits until the controllers run their workers. On error
// it stops whatever it started.
func StartCluster(ctx context.Context, o ClusterOptions) (c *Cluster, err error) {
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.StopControllers()
			err = errors.Join(err, c.Stop())
			c = nil
		}
	}()
	if c.Env, err = kubetest.Start(kubetest.Options{AssetsDir: o.KubeAssets, CRDDir: o.CRDs, Dir: o.Dir}); err != nil {
		return c, err
	}
	// Deployments roll out and become Ready, so Kustomizations with wait: true (fluxbridge's
	// default) can report Ready.
	if err := c.Env.StartWorkloads(ctx); err != nil {
		return c, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: FluxNamespace}}
	if err := c.Env.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return c, fmt.Errorf("create namespace %s: %w", FluxNamespace, err)
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	c.Relay = ncrelay.New(ncrelay.Options{Client: c.Env.Client, Logf: logf})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return c, err
	}
	c.relaySrv = &http.Server{Handler: c.Relay, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.relaySrv.Serve(l) }()
	if c.Controllers, err = StartControllers(ctx, c.Env, o.FluxBin, "http://"+l.Addr().String()+"/"); err != nil {
		return c, err
	}
	return c, nil
}

// StopControllers stops the controllers (no more events) and the relay once its deliveries
// are done. Stop the cluster's consumers after it and the cluster last.
func (c *Cluster) StopControllers() error {
	var errs []error
	for _, p := range c.Controllers {
		errs = append(errs, p.Stop())
	}
	c.Controllers = nil
	if c.relaySrv != nil {
		_ = c.relaySrv.Close()
		c.Relay.Wait()
		c.relaySrv = nil
	}
	return errors.Join(errs...)
}

// Stop stops whatever StopControllers left and then the cluster.
func (c *Cluster) Stop() error {
	errs := []error{c.StopControllers()}
	if c.Env != nil {
		errs = append(errs, c.Env.Stop())
	}
	return errors.Join(errs...)
}

// Errors returns the error lines of the controllers' logs, for failure output.
func (c *Cluster) Errors() string { return ControllerErrors(c.Controllers) }
