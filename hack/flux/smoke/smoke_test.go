// Package smoke runs the real Flux controllers (built by `make flux-controllers`)
// as host processes against a throwaway kube-apiserver + etcd, and checks that a
// GitRepository served by a local git server is applied by a Kustomization and a
// HelmRelease, and that the controllers POST their events to --events-addr.
//
// Run it with `make flux-smoke`, or from this directory:
//
//	go test -v -count=1 .            # verify
//	go test -v -count=1 . -update    # also re-record testdata/events/*.json
//
// Inputs (defaults relative to the repository root):
//
//	FLUX_BIN_DIR        bin/flux   source-, kustomize-, helm-controller
//	KUBEBUILDER_ASSETS  bin/kube   kube-apiserver, etcd
//	FLUX_CRDS_DIR       bin/crds   Flux CRD YAML
//	FLUX_SMOKE_LOGDIR   (temp)     where the controller logs go; kept if set
//
// Missing inputs skip the test, unless FLUX_SMOKE_REQUIRE=1.
package smoke

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

var update = flag.Bool("update", false, "re-record testdata/events/*.json from this run")

const (
	runtimeNamespace = "flux-system"
	targetNamespace  = "smoke"
)

// controller describes one Flux controller binary and the extra flags it needs.
type controller struct {
	name    string
	storage bool // source-controller serves artifacts
}

var controllers = []controller{
	{name: "source-controller", storage: true},
	{name: "kustomize-controller"},
	{name: "helm-controller"},
}

func TestSmoke(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	binDir := dirFromEnv("FLUX_BIN_DIR", filepath.Join(root, "bin", "flux"))
	assetsDir := dirFromEnv("KUBEBUILDER_ASSETS", filepath.Join(root, "bin", "kube"))
	crdDir := dirFromEnv("FLUX_CRDS_DIR", filepath.Join(root, "bin", "crds"))
	var missing []string
	for _, c := range controllers {
		missing = appendIfMissing(missing, filepath.Join(binDir, c.name))
	}
	missing = appendIfMissing(missing, filepath.Join(assetsDir, "kube-apiserver"))
	missing = appendIfMissing(missing, filepath.Join(assetsDir, "etcd"))
	missing = appendIfMissing(missing, crdDir)
	if len(missing) > 0 {
		msg := fmt.Sprintf("missing %s (make flux-controllers kube-assets crds)", strings.Join(missing, ", "))
		if os.Getenv("FLUX_SMOKE_REQUIRE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Throwaway control plane with the Flux CRDs.
	t0 := time.Now()
	env := &envtest.Environment{
		BinaryAssetsDirectory: assetsDir,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              []string{crdDir},
			ErrorIfPathMissing: true,
		},
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stop control plane: %v", err)
		}
	})
	t.Logf("control plane with CRDs ready in %s", time.Since(t0).Round(time.Millisecond))

	k, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{runtimeNamespace, targetNamespace} {
		if err := k.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	work := t.TempDir()
	admin, err := env.AddUser(envtest.User{Name: "flux-smoke", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}

	// Stand-in for notification-controller: records every POSTed event.
	sink := newEventSink(t)

	// Local git server holding testdata/repo on branch main. Its library
	// (gitkit) logs every request with the standard logger.
	log.SetOutput(io.Discard)
	git, err := gittestserver.NewTempGitServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(git.Root()) })
	if err := git.StartHTTP(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(git.StopHTTP)
	if err := git.InitRepo(filepath.Join("testdata", "repo"), "main", "smoke.git"); err != nil {
		t.Fatal(err)
	}

	// The controllers, as host processes.
	t0 = time.Now()
	var wg sync.WaitGroup
	for _, c := range controllers {
		p := startController(t, c, binDir, work, kubeconfigPath, sink.url)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.waitReady(ctx); err != nil {
				t.Errorf("%s not ready: %v\n%s", p.name, err, p.logTail())
				return
			}
			readyz := time.Since(p.started)
			// /readyz is only a ping; the reconcilers start once the caches sync.
			if err := p.waitLog(ctx, `"msg":"Starting workers"`); err != nil {
				t.Errorf("%s workers never started: %v\n%s", p.name, err, p.logTail())
				return
			}
			t.Logf("%s: /readyz 200 %s after start, first workers started after %s", p.name,
				readyz.Round(time.Millisecond), time.Since(p.started).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("all controllers ready in %s", time.Since(t0).Round(time.Millisecond))

	// Sources and appliers.
	t0 = time.Now()
	apply(ctx, t, k, obj("source.toolkit.fluxcd.io/v1", "GitRepository", "smoke", map[string]any{
		"interval": "10m",
		"url":      git.HTTPAddress() + "/smoke.git",
		"ref":      map[string]any{"branch": "main"},
	}))
	apply(ctx, t, k, obj("source.toolkit.fluxcd.io/v1", "GitRepository", "smoke-missing", map[string]any{
		"interval": "10m",
		"url":      git.HTTPAddress() + "/missing.git",
		"ref":      map[string]any{"branch": "main"},
	}))
	apply(ctx, t, k, obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "smoke-ok", map[string]any{
		"interval":        "10m",
		"path":            "./deploy",
		"prune":           true,
		"targetNamespace": targetNamespace,
		"sourceRef":       map[string]any{"kind": "GitRepository", "name": "smoke"},
	}))
	apply(ctx, t, k, obj("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "smoke-bad-path", map[string]any{
		"interval":        "10m",
		"path":            "./does-not-exist",
		"prune":           true,
		"targetNamespace": targetNamespace,
		"sourceRef":       map[string]any{"kind": "GitRepository", "name": "smoke"},
	}))
	apply(ctx, t, k, obj("helm.toolkit.fluxcd.io/v2", "HelmRelease", "smoke-helm", map[string]any{
		"interval":        "10m",
		"targetNamespace": targetNamespace,
		// Without it the release is named <targetNamespace>-<name>.
		"releaseName": "smoke-helm",
		"chart": map[string]any{"spec": map[string]any{
			"chart":     "./charts/smoke",
			"sourceRef": map[string]any{"kind": "GitRepository", "name": "smoke"},
		}},
	}))

	waitCondition(ctx, t, k, "source.toolkit.fluxcd.io/v1", "GitRepository", "smoke", "Ready", "True", t0)
	waitConfigMap(ctx, t, k, "smoke-kustomize", t0)
	waitCondition(ctx, t, k, "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "smoke-ok", "Ready", "True", t0)
	waitConfigMap(ctx, t, k, "smoke-helm-config", t0)
	waitCondition(ctx, t, k, "helm.toolkit.fluxcd.io/v2", "HelmRelease", "smoke-helm", "Ready", "True", t0)
	waitCondition(ctx, t, k, "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "smoke-bad-path", "Ready", "False", t0)
	waitCondition(ctx, t, k, "source.toolkit.fluxcd.io/v1", "GitRepository", "smoke-missing", "Ready", "False", t0)

	// The events we expect on the wire, and the file each is recorded to.
	wants := []struct {
		file, controller, kind, name, reason, severity, metadataKey string
	}{
		{"gitrepository-newartifact.json", "source-controller", "GitRepository", "smoke", "NewArtifact", "info", "source.toolkit.fluxcd.io/revision"},
		{"gitrepository-gitoperationfailed.json", "source-controller", "GitRepository", "smoke-missing", "GitOperationFailed", "error", ""},
		{"helmchart-chartpackagesucceeded.json", "source-controller", "HelmChart", "", "ChartPackageSucceeded", "info", ""},
		{"kustomization-progressing.json", "kustomize-controller", "Kustomization", "smoke-ok", "Progressing", "info", "kustomize.toolkit.fluxcd.io/revision"},
		{"kustomization-reconciliationsucceeded.json", "kustomize-controller", "Kustomization", "smoke-ok", "ReconciliationSucceeded", "info", "kustomize.toolkit.fluxcd.io/revision"},
		{"kustomization-artifactfailed.json", "kustomize-controller", "Kustomization", "smoke-bad-path", "ArtifactFailed", "error", ""},
		{"helmrelease-installsucceeded.json", "helm-controller", "HelmRelease", "smoke-helm", "InstallSucceeded", "info", "helm.toolkit.fluxcd.io/revision"},
	}
	found := make([][]byte, len(wants))
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		done := true
		for i, w := range wants {
			if found[i] != nil {
				continue
			}
			for _, body := range sink.bodies() {
				var ev event
				if err := json.Unmarshal(body, &ev); err != nil {
					return false, fmt.Errorf("event body is not JSON: %v: %s", err, body)
				}
				if ev.ReportingController == w.controller && ev.InvolvedObject.Kind == w.kind &&
					(w.name == "" || ev.InvolvedObject.Name == w.name) &&
					(w.reason == "" || ev.Reason == w.reason) && ev.Severity == w.severity &&
					(w.metadataKey == "" || ev.Metadata[w.metadataKey] != "") {
					found[i] = body
					break
				}
			}
			done = done && found[i] != nil
		}
		return done, nil
	})
	t.Logf("%d events received at --events-addr", len(sink.bodies()))
	for i, w := range wants {
		if found[i] == nil {
			t.Errorf("no %s %s event from %s for %s/%s", w.severity, w.reason, w.controller, w.kind, w.name)
		}
	}
	if err != nil {
		for _, body := range sink.bodies() {
			t.Logf("event: %s", body)
		}
		t.FailNow()
	}
	t.Logf("first event request headers: %v", sink.headers()[0])
	for _, h := range sink.headers() {
		if got := h.Get("Content-Type"); got != "application/json" {
			t.Errorf("event Content-Type %q, want application/json", got)
		}
	}

	if *update {
		dir := filepath.Join("testdata", "events")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, w := range wants {
			if err := os.WriteFile(filepath.Join(dir, w.file), append(scrub(found[i]), '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var all bytes.Buffer
		for _, body := range sink.bodies() {
			all.Write(scrub(body))
			all.WriteByte('\n')
		}
		if err := os.WriteFile(filepath.Join(dir, "all-events.jsonl"), all.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %d events into %s", len(wants), dir)
	}
}

// event is the subset of github.com/fluxcd/pkg/apis/event/v1beta1.Event the
// test matches on.
type event struct {
	InvolvedObject      corev1.ObjectReference `json:"involvedObject"`
	Severity            string                 `json:"severity"`
	Reason              string                 `json:"reason"`
	Message             string                 `json:"message"`
	Metadata            map[string]string      `json:"metadata"`
	ReportingController string                 `json:"reportingController"`
	ReportingInstance   string                 `json:"reportingInstance"`
}

// scrub replaces the recording machine's hostname (the controllers put
// os.Hostname() in reportingInstance) with a pod-like name, as in a cluster.
func scrub(body []byte) []byte {
	var ev event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ReportingInstance == "" {
		return body
	}
	pod := ev.ReportingController + "-0"
	re := regexp.MustCompile(`"reportingInstance":"[^"]*"`)
	return re.ReplaceAll(body, []byte(`"reportingInstance":"`+pod+`"`))
}

type eventSink struct {
	url string
	mu  sync.Mutex
	b   [][]byte
	h   []http.Header
}

func newEventSink(t *testing.T) *eventSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &eventSink{url: "http://" + ln.Addr().String() + "/"}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "want a POST with a body", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.b = append(s.b, body)
		s.h = append(s.h, r.Header.Clone())
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *eventSink) bodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.b...)
}

func (s *eventSink) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.h...)
}

type process struct {
	name       string
	healthAddr string
	logPath    string
	started    time.Time
	exited     chan struct{}
}

// waitReady waits for /readyz to answer 200, failing fast if the process exits.
func (p *process) waitReady(ctx context.Context) error {
	url := "http://" + p.healthAddr + "/readyz"
	return poll(ctx, time.Minute, func() (bool, error) {
		select {
		case <-p.exited:
			return false, errors.New("process exited")
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitLog waits for s to appear in the process log.
func (p *process) waitLog(ctx context.Context, s string) error {
	return poll(ctx, time.Minute, func() (bool, error) {
		b, err := os.ReadFile(p.logPath)
		return bytes.Contains(b, []byte(s)), err
	})
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startController starts one controller with the flags that work as a host
// process against an admin kubeconfig; it is stopped (SIGTERM) at cleanup.
func startController(t *testing.T, c controller, binDir, work, kubeconfig, eventsURL string) *process {
	t.Helper()
	logDir := dirFromEnv("FLUX_SMOKE_LOGDIR", work)
	p := &process{name: c.name, healthAddr: freeAddr(t), logPath: filepath.Join(logDir, c.name+".log"), exited: make(chan struct{})}
	args := []string{
		"--watch-all-namespaces",
		"--enable-leader-election=false",
		"--log-encoding=json",
		"--metrics-addr=" + freeAddr(t),
		"--health-addr=" + p.healthAddr,
		"--events-addr=" + eventsURL,
	}
	if c.storage {
		// source-controller refuses to start unless the storage directory exists.
		dir := filepath.Join(work, "storage")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		storage := freeAddr(t)
		args = append(args,
			"--storage-path="+dir,
			"--storage-addr="+storage,
			"--storage-adv-addr="+storage,
		)
	}
	home := filepath.Join(work, "home-"+c.name)
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, c.name), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "RUNTIME_NAMESPACE="+runtimeNamespace, "HOME="+home)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := p.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logFile.Close()
		if t.Failed() {
			t.Logf("%s log tail:\n%s", c.name, p.logTail())
		}
	})
	return p
}

func obj(apiVersion, kind, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(runtimeNamespace)
	u.SetName(name)
	return u
}

func apply(ctx context.Context, t *testing.T, k client.Client, u *unstructured.Unstructured) {
	t.Helper()
	if err := k.Create(ctx, u); err != nil {
		t.Fatalf("create %s/%s: %v", u.GetKind(), u.GetName(), err)
	}
}

func waitCondition(ctx context.Context, t *testing.T, k client.Client, apiVersion, kind, name, condType, want string, since time.Time) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	var last string
	err := poll(ctx, 2*time.Minute, func() (bool, error) {
		if err := k.Get(ctx, client.ObjectKey{Namespace: runtimeNamespace, Name: name}, u); err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == condType {
				last = fmt.Sprintf("%v %v: %v", m["status"], m["reason"], m["message"])
				return m["status"] == want, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s/%s %s never %s (last: %s): %v", kind, name, condType, want, last, err)
	}
	t.Logf("%s/%s %s=%s after %s (%s)", kind, name, condType, want, time.Since(since).Round(time.Millisecond), last)
}

func waitConfigMap(ctx context.Context, t *testing.T, k client.Client, name string, since time.Time) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := poll(ctx, 2*time.Minute, func() (bool, error) {
		err := k.Get(ctx, client.ObjectKey{Namespace: targetNamespace, Name: name}, cm)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("ConfigMap %s/%s never appeared: %v", targetNamespace, name, err)
	}
	t.Logf("ConfigMap %s/%s present after %s: %v", targetNamespace, name, time.Since(since).Round(time.Millisecond), cm.Data)
}

// poll calls f every 100ms until it returns true, an error, or timeout.
func poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a currently free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func dirFromEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func appendIfMissing(missing []string, path string) []string {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return append(missing, path)
	}
	return missing
}
