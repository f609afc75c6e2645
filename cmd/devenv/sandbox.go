package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxbridge/fluxbridge/internal/sandbox"
)

// The sandbox of `make run`: a local cluster with Flux (internal/sandbox) and a loopback Git
// server holding a fleet repository, with a demo project whose dev and prod environments
// deploy to it. Its state lives in .data/sandbox and survives restarts.
const (
	// envSandbox=0 leaves the sandbox out of `make run`.
	envSandbox = "FLUXBRIDGE_SANDBOX"
	// sandboxCluster is the cluster's name in fluxbridge's config.
	sandboxCluster = "sandbox"
	// demoProject is the project the sandbox creates on its first run.
	demoProject = "demo"
	// sandboxStartTimeout bounds the start of the cluster once its binaries are built.
	sandboxStartTimeout = 4 * time.Minute
)

// sandboxRun is the sandbox of one `devenv run`.
type sandboxRun struct {
	dir        string // .data/sandbox, absolute
	configPath string // the config devenv writes for the receiver and worker
	receiver   string // base URL of the receiver
	token      string // the sandbox cluster's webhook token
	tokenFile  string // the bootstrap admin's API token
	out        *printer

	sb *sandbox.Sandbox
}

// newSandboxRun writes the config without the sandbox cluster, for the processes that start
// before it is ready.
func newSandboxRun(listenAddr string) (*sandboxRun, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, "sandbox"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s := &sandboxRun{
		dir:        dir,
		configPath: filepath.Join(dir, "fluxbridge.yaml"),
		receiver:   strings.TrimSuffix(consoleURL(listenAddr), "/"),
	}
	tokenPath := filepath.Join(dir, "webhook-token")
	if b, err := os.ReadFile(tokenPath); err == nil && len(bytes.TrimSpace(b)) > 0 {
		s.token = string(bytes.TrimSpace(b))
	} else {
		tok := make([]byte, 24)
		if _, err := rand.Read(tok); err != nil {
			return nil, err
		}
		s.token = hex.EncodeToString(tok)
		if err := os.WriteFile(tokenPath, []byte(s.token+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return s, s.writeConfig(false)
}

// writeConfig writes fluxbridge's config, with the sandbox cluster once it runs.
func (s *sandboxRun) writeConfig(withCluster bool) error {
	body := "# Written by devenv on every `make run`: the sandbox cluster joins once it is up.\n"
	if !withCluster {
		body += "clusters: []\n"
	} else {
		body += fmt.Sprintf(`clusters:
  - name: %s
    kubeconfig: %s
    webhookToken: %s
    receiverURL: %s
`, sandboxCluster, s.sb.Env.KubeconfigPath(), s.token, s.receiver)
	}
	return os.WriteFile(s.configPath, []byte(body), 0o600)
}

func (s *sandboxRun) logf(format string, args ...any) {
	s.out.line("sandbox | " + fmt.Sprintf(format, args...))
}

// start builds the sandbox's binaries when they are missing, starts the sandbox and writes
// the config with its cluster. It reports whether the sandbox runs; a failure is printed and
// fluxbridge goes on without it. When ctx ends it stops whatever it started.
func (s *sandboxRun) start(ctx context.Context) bool {
	// envtest and the relay's client log through controller-runtime, which otherwise warns
	// that no logger was set; what matters is printed here.
	crlog.SetLogger(logr.Discard())
	t0 := time.Now()
	assets, err := sandbox.FindAssets()
	if err != nil {
		s.logf("building the sandbox cluster's binaries (kube-apiserver, etcd, kwok, Flux controllers) into the cache outside the clone: about 20 minutes on 2 cores the first time, seconds afterwards; fluxbridge is up meanwhile")
		if err := s.build(ctx); err != nil {
			if ctx.Err() == nil {
				s.logf("build failed, going on without the sandbox: %v", err)
			}
			return false
		}
		if assets, err = sandbox.FindAssets(); err != nil {
			s.logf("going on without the sandbox: %v", err)
			return false
		}
		s.logf("binaries built in %s", time.Since(t0).Round(time.Second))
	}
	if ctx.Err() != nil {
		return false
	}
	s.logf("starting the cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok; source-, kustomize- and helm-controller; a stand-in for notification-controller) and the Git server")
	t1 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, sandboxStartTimeout)
	defer cancel()
	s.sb, err = sandbox.Start(sctx, sandbox.Options{
		Dir: s.dir, KubeAssets: assets.Kube, CRDs: assets.CRDs, FluxBin: assets.Flux,
		Logf: func(format string, args ...any) { s.logf("relay: "+format, args...) },
	})
	if err != nil {
		if ctx.Err() == nil {
			s.logf("start failed, going on without the sandbox: %v", err)
		}
		return false
	}
	if ctx.Err() != nil {
		s.stop()
		return false
	}
	if err := s.writeConfig(true); err != nil {
		s.logf("write config: %v", err)
		s.stop()
		return false
	}
	s.logf("cluster up in %s: kubeconfig %s; Git server %s (user %s, password in %s)",
		time.Since(t1).Round(100*time.Millisecond), s.sb.Env.KubeconfigPath(), s.sb.Git.URL(sandbox.FleetRepo),
		sandbox.GitUser, filepath.Join(dataDir, "sandbox", "git", "password"))
	return true
}

// build runs `make rig-links`, which builds the binaries into the cache keyed by version and
// links them under bin/, printing its progress.
func (s *sandboxRun) build(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "rig-links")
	cmd.Env = os.Environ()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		copyPrefixed(s.out, "sandbox | ", pr)
		close(done)
	}()
	err := cmd.Run()
	_ = pw.Close()
	<-done
	return err
}

func (s *sandboxRun) stopControllers() {
	if s.sb != nil {
		_ = s.sb.StopControllers()
	}
}

func (s *sandboxRun) stop() {
	if s.sb == nil {
		return
	}
	if err := s.sb.Stop(); err != nil {
		s.logf("stop: %v", err)
	}
	s.sb = nil
}

// seed creates the demo project on the first run, through fluxbridge's API as the bootstrap
// admin: environments dev and prod in the sandbox cluster and the fleet repository. Its first
// deploy bootstraps each environment's GitRepository and Kustomization.
func (s *sandboxRun) seed(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		resp, err := http.Get(s.receiver + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	tok, err := os.ReadFile(s.tokenFile)
	if err != nil {
		s.logf("demo project: read the admin token: %v", err)
		return
	}
	c := apiClient{base: s.receiver + "/api/v1", token: strings.TrimSpace(string(tok))}
	status, err := c.do(ctx, http.MethodGet, "/projects/"+demoProject, nil)
	switch {
	case err != nil:
		s.logf("demo project: %v", err)
		return
	case status == http.StatusOK:
		s.logf("ready: project %q deploys to cluster %s — %sprojects/%s", demoProject, sandboxCluster, s.receiver+"/", demoProject)
		return
	}
	git := s.sb.Git
	steps := []struct {
		path string
		body any
	}{
		{"/projects", map[string]any{"slug": demoProject, "name": "Demo", "description": "The sandbox's project: dev and prod in the local cluster"}},
		{"/projects/" + demoProject + "/environments", map[string]any{"name": "dev", "kind": "dev", "cluster": sandboxCluster}},
		{"/projects/" + demoProject + "/environments", map[string]any{"name": "prod", "kind": "prod", "cluster": sandboxCluster}},
		{"/projects/" + demoProject + "/repositories", map[string]any{
			"name": sandbox.FleetRepo, "url": git.URL(sandbox.FleetRepo),
			"auth":   map[string]any{"type": "https", "username": sandbox.GitUser, "password": git.Password, "ca_cert": string(git.CAPEM)},
			"gitops": map[string]any{"enabled": true, "branch": "main", "path": "clusters"},
		}},
	}
	for _, st := range steps {
		status, err := c.do(ctx, http.MethodPost, st.path, st.body)
		if err == nil && status != http.StatusCreated {
			err = fmt.Errorf("HTTP %d", status)
		}
		if err != nil {
			s.logf("demo project: POST %s: %v", st.path, err)
			return
		}
	}
	s.logf("ready: created project %q with environments dev and prod in cluster %s and repository %s — deploy at %sprojects/%s/environments/dev/deploy",
		demoProject, sandboxCluster, sandbox.FleetRepo, s.receiver+"/", demoProject)
}

// apiClient calls fluxbridge's API with a bearer token.
type apiClient struct{ base, token string }

// do sends body as JSON and returns the status; an error answer's body is in the error.
func (c apiClient) do(ctx context.Context, method, path string, body any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		return resp.StatusCode, errors.New(strings.TrimSpace(string(msg)))
	}
	return resp.StatusCode, nil
}
