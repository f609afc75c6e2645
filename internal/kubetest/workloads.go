package kubetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// FakeNodeName is the Node StartWorkloads registers; kwok plays its
	// kubelet, so Pods scheduled there turn Running and Ready without
	// running anything.
	FakeNodeName = "kwok-node-0"

	// workloadsReadyTimeout bounds how long StartWorkloads waits for each
	// process to answer its health check and for the Node to become Ready.
	workloadsReadyTimeout = 90 * time.Second
	// pollInterval is how often readiness is polled.
	pollInterval = 100 * time.Millisecond
	// kwokPodCIDR is where kwok takes fake Pod IPs from; kept apart from
	// serviceClusterIPRange to avoid confusion when reading Pods.
	kwokPodCIDR = "10.244.0.0/16"
)

// kwokStageFiles are the kwok Stage manifests `make kube-assets` copies from
// the kwok module into <assets>/kwok-stages: Node Ready and heartbeats, Pods
// Ready, Completed and deleted.
var kwokStageFiles = []string{
	"node-initialize.yaml",
	"node-heartbeat-with-lease.yaml",
	"pod-ready.yaml",
	"pod-complete.yaml",
	"pod-delete.yaml",
}

// workloads are the processes StartWorkloads runs next to the apiserver.
type workloads struct {
	procs []*hostProcess
}

// StartWorkloads starts kube-controller-manager, kube-scheduler and kwok
// against the Env and registers the fake Node FakeNodeName, so that
// Deployments, ReplicaSets, Jobs and garbage collection behave as in a real
// cluster and Pods become Ready (nothing actually runs). It returns once all
// three are healthy and the Node is Ready. Stop stops them; calling
// StartWorkloads again does nothing.
//
// Most tests do not need this: without it, objects are stored but no
// controller acts on them, and namespaces never finish deleting.
func (e *Env) StartWorkloads(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("start workloads: env is stopped")
	}
	if e.workloads != nil {
		return nil
	}
	w, err := e.startWorkloads(ctx)
	if err != nil {
		return fmt.Errorf("start workloads: %w", err)
	}
	e.workloads = w
	return nil
}

func (e *Env) startWorkloads(ctx context.Context) (_ *workloads, err error) {
	stages := make([]string, 0, len(kwokStageFiles))
	for _, f := range kwokStageFiles {
		stages = append(stages, filepath.Join(e.assetsDir, "kwok-stages", f))
	}
	if err := requireFiles(e.assetsDir, "make kube-assets",
		"kube-controller-manager", "kube-scheduler", "kwok"); err != nil {
		return nil, err
	}
	if err := requireFiles(filepath.Join(e.assetsDir, "kwok-stages"), "make kube-assets", kwokStageFiles...); err != nil {
		return nil, err
	}

	dir := filepath.Join(e.dir, "workloads")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create dir: %w", err)
	}
	api := e.env.ControlPlane.APIServer
	rootCA := filepath.Join(dir, "apiserver-ca.crt")
	if err := os.WriteFile(rootCA, api.SecureServing.CA, 0o600); err != nil {
		return nil, fmt.Errorf("write apiserver CA: %w", err)
	}
	kubeconfig := e.kubeconfigPath

	w := &workloads{}
	defer func() {
		if err != nil {
			err = errors.Join(err, w.stop())
		}
	}()

	kcmPort, err := freePort()
	if err != nil {
		return nil, err
	}
	kcm, err := startHostProcess(dir, filepath.Join(e.assetsDir, "kube-controller-manager"), nil,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(kcmPort),
		"--cert-dir="+filepath.Join(dir, "kube-controller-manager-certs"),
		// Signs the tokens of ServiceAccounts; the apiserver checks them
		// with the matching public key envtest generated.
		"--service-account-private-key-file="+filepath.Join(api.CertDir, "sa-signer.key"),
		"--root-ca-file="+rootCA,
		"--service-cluster-ip-range="+serviceClusterIPRange,
		// kwok plays the node's kubelet. On a busy machine its heartbeat can lapse past the
		// node monitor's grace period; the node lifecycle controller would then mark every Pod
		// NotReady, and kwok (whose Ready stage has already run) never marks them Ready again.
		// The controller stays, to lift the not-ready taint of the new node.
		"--node-monitor-grace-period=1h",
	)
	if err != nil {
		return nil, err
	}
	w.procs = append(w.procs, kcm)

	schedPort, err := freePort()
	if err != nil {
		return nil, err
	}
	sched, err := startHostProcess(dir, filepath.Join(e.assetsDir, "kube-scheduler"), nil,
		"--kubeconfig="+kubeconfig,
		"--authentication-kubeconfig="+kubeconfig,
		"--authorization-kubeconfig="+kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(schedPort),
		"--cert-dir="+filepath.Join(dir, "kube-scheduler-certs"),
	)
	if err != nil {
		return nil, err
	}
	w.procs = append(w.procs, sched)

	kwokPort, err := freePort()
	if err != nil {
		return nil, err
	}
	// kwok also reads ~/.kwok/kwok.yaml if it exists; a HOME of its own
	// keeps the user's configuration out.
	kwokHome := filepath.Join(dir, "kwok-home")
	if err := os.MkdirAll(kwokHome, 0o700); err != nil {
		return nil, fmt.Errorf("create kwok home: %w", err)
	}
	kwokAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(kwokPort))
	kwok, err := startHostProcess(dir, filepath.Join(e.assetsDir, "kwok"), []string{"HOME=" + kwokHome},
		"--kubeconfig="+kubeconfig,
		"--config="+strings.Join(stages, ","),
		"--manage-all-nodes=true",
		"--server-address="+kwokAddr,
		"--cidr="+kwokPodCIDR,
	)
	if err != nil {
		return nil, err
	}
	w.procs = append(w.procs, kwok)

	ctx, cancel := context.WithTimeout(ctx, workloadsReadyTimeout)
	defer cancel()
	if err := kcm.waitHealthy(ctx, "https://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(kcmPort))+"/healthz"); err != nil {
		return nil, err
	}
	if err := sched.waitHealthy(ctx, "https://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(schedPort))+"/healthz"); err != nil {
		return nil, err
	}
	if err := kwok.waitHealthy(ctx, "http://"+kwokAddr+"/healthz"); err != nil {
		return nil, err
	}
	if err := e.registerFakeNode(ctx, kwok); err != nil {
		return nil, err
	}
	return w, nil
}

// stop stops the processes in reverse start order.
func (w *workloads) stop() error {
	var errs []error
	for i := len(w.procs) - 1; i >= 0; i-- {
		errs = append(errs, w.procs[i].stop())
	}
	w.procs = nil
	return errors.Join(errs...)
}

// registerFakeNode creates FakeNodeName with room for many Pods and waits
// until kwok reports it Ready.
func (e *Env) registerFakeNode(ctx context.Context, kwok *hostProcess) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: FakeNodeName,
			Annotations: map[string]string{
				"kwok.x-k8s.io/node":           "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"kubernetes.io/hostname": FakeNodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
		// A Node is created with its status, as a kubelet registers it.
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	if err := e.Client.Create(ctx, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", FakeNodeName, err)
	}
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if exited, werr := kwok.exited(); exited {
			return false, fmt.Errorf("kwok exited: %w\n%s", werr, kwok.logTail())
		}
		var n corev1.Node
		if err := e.Client.Get(ctx, client.ObjectKey{Name: FakeNodeName}, &n); err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for node %s to be ready: %w", FakeNodeName, err)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// healthClient polls the health endpoints of the workloads, which serve
// self-signed certificates on loopback.
var healthClient = &http.Client{
	Timeout: 2 * time.Second,
	Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback health check of a self-signed test server
	},
}

// waitHealthy polls url until it answers 200 OK, failing early with the end
// of the log if the process exits.
func (p *hostProcess) waitHealthy(ctx context.Context, url string) error {
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if exited, err := p.exited(); exited {
			return false, fmt.Errorf("exited: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := healthClient.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to be healthy: %w\n%s", p.name, err, p.logTail())
	}
	return nil
}
