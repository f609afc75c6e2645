package kubetest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// StopAPIServer stops kube-apiserver and leaves etcd running, to test how
// callers cope with an unreachable cluster: requests fail with connection
// refused until StartAPIServer. It does nothing if the apiserver is already
// stopped.
//
// envtest has no restart of its own; this stops envtest's APIServer process
// directly. Because Start gave the apiserver a certificate directory that
// envtest does not delete, StartAPIServer brings it back with the same
// serving certificate and port.
func (e *Env) StopAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("stop apiserver: env is stopped")
	}
	if e.apiDown {
		return nil
	}
	if err := e.env.ControlPlane.APIServer.Stop(); err != nil {
		// With watch streams open, kube-apiserver may outlast envtest's stop timeout;
		// envtest then SIGKILLs it but still reports an error. It is down once its port
		// stops answering, and StartAPIServer must then start it again.
		if !e.waitAPIServerGone(10 * time.Second) {
			return fmt.Errorf("stop apiserver: %w", err)
		}
	}
	e.apiDown = true
	return nil
}

// waitAPIServerGone reports whether the apiserver's port stops accepting connections
// within d.
func (e *Env) waitAPIServerGone(d time.Duration) bool {
	if e.Config == nil {
		return true // it never answered
	}
	u, err := url.Parse(e.Config.Host)
	if err != nil {
		return false
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", u.Host, 200*time.Millisecond)
		if err != nil {
			return true
		}
		_ = c.Close()
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// address, certificates and etcd data, and waits until it is healthy and
// serves the installed CRDs again. Config, Client and the kubeconfig keep
// working. It does nothing if the apiserver is running.
func (e *Env) StartAPIServer() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("start apiserver: env is stopped")
	}
	if !e.apiDown {
		return nil
	}
	api := e.env.ControlPlane.APIServer
	if err := api.Start(); err != nil {
		// Start may leave a half-started process behind on timeout.
		return errors.Join(fmt.Errorf("start apiserver: %w", err), api.Stop())
	}
	e.apiDown = false
	if len(e.env.CRDs) > 0 {
		if err := envtest.WaitForCRDs(e.Config, e.env.CRDs, e.env.CRDInstallOptions); err != nil {
			return fmt.Errorf("start apiserver: wait for CRDs: %w", err)
		}
	}
	return nil
}
