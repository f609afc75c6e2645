// Package kubetest runs a real etcd and kube-apiserver for tests, with the
// Flux CRDs installed, through controller-runtime's envtest.
//
// The binaries and CRDs are not downloaded here: `make kube-assets crds`
// builds them from Go modules into bin/kube and bin/crds, and Start finds
// them by walking up from the test's working directory to go.mod. Every Env
// binds 127.0.0.1 only and uses its own ports, so several can run in one
// process (two-cluster tests).
//
// A package normally starts one Env in TestMain with Run. Env.StopAPIServer
// and Env.StartAPIServer take the apiserver away and bring it back on the
// same address and etcd data; Env.StartWorkloads adds kube-controller-manager,
// kube-scheduler and kwok for tests that need Deployments to become Ready.
//
// Everything an Env runs or writes names its own temporary directory. On
// Linux a small shell process per Env removes that directory and kills those
// processes if the test process dies without calling Stop (a panic or a
// -timeout), so a crashed test leaves no apiserver behind.
package kubetest

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
)

const (
	// startTimeout bounds the start of etcd and of kube-apiserver each. A
	// healthy start takes about 3 s; a busy 2-core machine needs more.
	startTimeout = 90 * time.Second
	// crdPollInterval is how often discovery is polled for installed CRDs.
	crdPollInterval = 100 * time.Millisecond
	// stopTimeout bounds the graceful stop of each process before SIGKILL.
	stopTimeout = 20 * time.Second
	// serviceClusterIPRange is the Service CIDR the apiserver allocates from;
	// kube-controller-manager must be given the same one.
	serviceClusterIPRange = "10.0.0.0/24"
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// AssetsDir holds etcd and kube-apiserver, and for StartWorkloads also
	// kube-controller-manager, kube-scheduler, kwok and kwok-stages/.
	// Default: $KUBEBUILDER_ASSETS, else bin/kube at the repository root.
	AssetsDir string
	// CRDDir holds the CRD manifests (*.yaml) to install.
	// Default: bin/crds at the repository root.
	CRDDir string
	// NoCRDs skips installing CRDs, for tests that need only built-in kinds.
	NoCRDs bool
	// Output receives the stdout and stderr of etcd and kube-apiserver. Nil
	// discards them, unless KUBEBUILDER_ATTACH_CONTROL_PLANE_OUTPUT=true.
	Output io.Writer
	// Dir, when set, is a work directory that outlives the Env: Stop leaves
	// it (etcd's data, the serving certificates, the logs) in place, and a
	// later Start on the same Dir brings the same cluster back, on new ports
	// and with a new kubeconfig. The sandbox of `make run` keeps its cluster
	// this way. Default: a temporary directory that Stop removes.
	Dir string
}

// Env is a running etcd and kube-apiserver with the Flux CRDs installed.
// Its methods are safe for concurrent use.
type Env struct {
	// Config is an admin (system:masters) client configuration. It stays
	// valid across StopAPIServer and StartAPIServer.
	Config *rest.Config
	// Client is a controller-runtime client whose Scheme knows the built-in
	// kinds and the Flux kinds (see fluxscheme.AddToScheme).
	Client client.Client
	// Scheme is the scheme of Client.
	Scheme *runtime.Scheme

	env            *envtest.Environment
	dir            string // etcd data, apiserver certs, kubeconfig, workload logs
	keep           bool   // dir is Options.Dir: Stop leaves it
	kubeconfigPath string
	assetsDir      string
	reaper         *reaper

	mu        sync.Mutex // guards the fields below and apiserver start/stop
	apiDown   bool
	stopped   bool
	workloads *workloads
	procs     []*hostProcess // started by StartProcess
}

// apiStopTimeout bounds a graceful stop of etcd and kube-apiserver before they are killed.
const apiStopTimeout = 3 * time.Second

// Start starts etcd and kube-apiserver and installs the CRDs, waiting until
// they are served. Stop releases everything Start acquired; on error nothing
// is left running.
func Start(opts Options) (*Env, error) {
	if err := opts.resolveDirs(); err != nil {
		return nil, err
	}
	scheme, err := fluxscheme.New()
	if err != nil {
		return nil, err
	}
	dir, keep := opts.Dir, opts.Dir != ""
	if keep {
		if dir, err = filepath.Abs(dir); err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
	} else {
		dir, err = os.MkdirTemp("", "kubetest-")
	}
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	e := &Env{
		Scheme:         scheme,
		dir:            dir,
		keep:           keep,
		kubeconfigPath: filepath.Join(dir, "kubeconfig"),
		assetsDir:      opts.AssetsDir,
	}
	if e.reaper, err = startReaper(dir, keep); err != nil {
		if !keep {
			err = errors.Join(err, os.RemoveAll(dir))
		}
		return nil, err
	}
	if err := e.start(opts); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// start configures envtest to run in e.dir, starts it, builds the client
// and writes the kubeconfig.
func (e *Env) start(opts Options) error {
	te := &envtest.Environment{
		Scheme:                   e.Scheme,
		BinaryAssetsDirectory:    opts.AssetsDir,
		UseExistingCluster:       ptr.To(false),
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  stopTimeout,
	}
	e.env = te
	if !opts.NoCRDs {
		te.CRDDirectoryPaths = []string{opts.CRDDir}
		te.ErrorIfCRDPathMissing = true
		// Also used by StartAPIServer to wait for the CRDs to be served.
		te.CRDInstallOptions.MaxTime = startTimeout
		te.CRDInstallOptions.PollInterval = crdPollInterval
	}
	// Directories of our own are not deleted by envtest when a process
	// stops, and they put e.dir on every command line, which is what the
	// reaper looks for.
	te.ControlPlane.Etcd = &envtest.Etcd{
		Path:    filepath.Join(opts.AssetsDir, "etcd"),
		DataDir: filepath.Join(e.dir, "etcd"),
		Out:     opts.Output,
		Err:     opts.Output,
	}
	api := te.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(opts.AssetsDir, "kube-apiserver")
	api.Out, api.Err = opts.Output, opts.Output
	// Because the cert dir survives StopAPIServer, a restarted apiserver
	// keeps its serving certificate, and Config and the kubeconfig stay
	// valid.
	api.CertDir = filepath.Join(e.dir, "apiserver")
	// A graceful stop waits for open watches for envtest's 20 s default; a test cluster
	// is killed after apiStopTimeout instead (StopAPIServer copes with the kill).
	te.ControlPlaneStopTimeout = apiStopTimeout
	for _, d := range []string{te.ControlPlane.Etcd.DataDir, api.CertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create dir: %w", err)
		}
	}
	caPath := filepath.Join(api.CertDir, "serving-ca.crt")
	if e.keep {
		// envtest keeps an apiserver.crt it finds but knows its CA only from making it:
		// give it the CA of the last run, or have it make new ones when they are missing
		// or about to expire.
		if ca, err := os.ReadFile(caPath); err == nil && certValid(filepath.Join(api.CertDir, "apiserver.crt"), time.Hour) {
			api.SecureServing.CA = ca
		} else if err := os.Remove(filepath.Join(api.CertDir, "apiserver.crt")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("renew apiserver certificate: %w", err)
		}
	}
	// Without a default route the apiserver finds no address to advertise
	// and refuses to start; the endpoint reconciler would publish it too.
	api.Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none").
		Set("service-cluster-ip-range", serviceClusterIPRange)

	cfg, err := te.Start()
	// envtest puts its (unused) webhook serving certificates in a temporary
	// directory of its own; Stop removes it, the reaper after a crash.
	if rerr := e.reaper.alsoRemove(te.WebhookInstallOptions.LocalServingCertDir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("start apiserver: %w", err)
	}
	if e.keep {
		if err := os.WriteFile(caPath, api.SecureServing.CA, 0o600); err != nil {
			return fmt.Errorf("keep apiserver CA: %w", err)
		}
	}
	e.Config = cfg
	c, err := client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	e.Client = c
	if err := os.WriteFile(e.kubeconfigPath, te.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// certValid reports whether the PEM certificate at path is valid for at least d more.
func certValid(path string, d time.Duration) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return false
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	return err == nil && time.Now().Add(d).Before(c.NotAfter)
}

// KubeconfigPath returns the path of an admin kubeconfig for this Env, for
// processes started outside the test (Flux controllers, kubectl). The file
// lives until Stop and stays valid across StopAPIServer and StartAPIServer.
func (e *Env) KubeconfigPath() string {
	return e.kubeconfigPath
}

// Stop stops the workloads, kube-apiserver and etcd, and deletes the Env's
// files (unless they are in Options.Dir). Calling it again does nothing.
func (e *Env) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	e.stopped = true
	// Processes of StartProcess talk to the apiserver: they go first.
	errs := []error{e.stopProcs()}
	if e.workloads != nil {
		errs = append(errs, e.workloads.stop())
	}
	if e.env != nil {
		// envtest kills a process that outlasts apiStopTimeout (kube-apiserver with watches
		// open, on a busy machine) but still reports the timeout: that is a stop too, once
		// the apiserver no longer answers.
		if err := e.env.Stop(); err != nil && !(strings.Contains(err.Error(), "timeout waiting for process") && e.waitAPIServerGone(10*time.Second)) {
			errs = append(errs, fmt.Errorf("stop control plane: %w", err))
		}
	}
	if !e.keep {
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove work dir: %w", err))
		}
	}
	errs = append(errs, e.reaper.stop())
	return errors.Join(errs...)
}

// Apply creates or updates obj with server-side apply as fieldOwner, forcing
// ownership of conflicting fields, and stores the server's answer in obj.
// obj is sent as its JSON form, so zero values without omitempty (false,
// 0) are applied too; the status and creationTimestamp are left out.
func (e *Env) Apply(ctx context.Context, obj client.Object, fieldOwner string) error {
	gvk, err := apiutil.GVKForObject(obj, e.Scheme)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("apply %s: %w", gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := e.Client.Apply(ctx, ac, client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	// Start from a zero obj, as a Get would: the converter leaves fields
	// that are missing from the answer untouched.
	v := reflect.ValueOf(obj).Elem()
	v.Set(reflect.Zero(v.Type()))
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		return fmt.Errorf("apply %s: read result: %w", gvk.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}

// InstallCRDs installs the CRD manifests at paths (files or directories) on a running Env, as
// an upgrade of Flux adding components would, and waits until they are served.
func (e *Env) InstallCRDs(paths ...string) error {
	_, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{
		Paths: paths, ErrorIfPathMissing: true, MaxTime: startTimeout, PollInterval: crdPollInterval,
	})
	if err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	return nil
}
