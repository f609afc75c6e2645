package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
)

// newWorkDir builds receiver, worker and devenv into a fresh directory's bin/ and writes a
// Procfile running them there, as a checkout has them.
func newWorkDir(t *testing.T) (work, binDir string) {
	t.Helper()
	work = t.TempDir()
	require.NoError(t, os.Chmod(work, 0o755)) // the embedded Postgres may run as the postgres user
	require.NoError(t, os.Chmod(filepath.Dir(work), 0o755))
	binDir = filepath.Join(work, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "github.com/fluxbridge/fluxbridge/cmd/receiver",
		"github.com/fluxbridge/fluxbridge/cmd/worker", "github.com/fluxbridge/fluxbridge/cmd/devenv")
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	require.NoError(t, os.WriteFile(filepath.Join(work, "Procfile"),
		[]byte(fmt.Sprintf("receiver: %s/receiver\nworker: %s/worker\n", binDir, binDir)), 0o644))
	return work, binDir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServesAndProcessesASignedEvent is what `make run` does, end to end: devenv starts the
// embedded Postgres and the Procfile's receiver and worker; a signed notification-controller
// event is accepted and processed; Ctrl-C stops everything.
func TestRunServesAndProcessesASignedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	work, binDir := newWorkDir(t)

	listen := freeAddr(t)
	cmd := exec.Command(filepath.Join(binDir, "devenv"), "run")
	cmd.Dir = work
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "FLUXBRIDGE_CONFIG=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "LISTEN_ADDR="+listen, "METRICS_ADDR="+freeAddr(t), "LOG_FORMAT=json", envSandbox+"=0")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGINT)
			_ = cmd.Wait()
		}
		if t.Failed() {
			t.Log(logs.String())
		}
	})

	base := "http://" + listen
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond)

	cfg, err := os.ReadFile(filepath.Join(work, ".data", "fluxbridge.yaml"))
	require.NoError(t, err)
	var token string
	for _, line := range strings.Split(string(cfg), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "webhookToken: "); ok {
			token = v
		}
	}
	require.NotEmpty(t, token)

	body := fluxeventtest.Body(t, fluxeventtest.KustomizationBuildFailed)
	req, err := http.NewRequest(http.MethodPost, base+"/hooks/flux/local", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Signature", fluxeventtest.SignSHA256(body, []byte(token)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	// The receiver bootstrapped an admin and wrote its token where devenv said.
	adminToken, err := os.ReadFile(filepath.Join(work, ".data", "admin-token"))
	require.NoError(t, err)
	require.Contains(t, logs.String(), "devenv | admin API token: .data/admin-token")
	api := func(path string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(adminToken)))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp = api("/api/v1/me")
	var me struct {
		User struct {
			Username string `json:"username"`
			IsAdmin  bool   `json:"is_admin"`
		} `json:"user"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&me))
	resp.Body.Close()
	require.Equal(t, "admin", me.User.Username)
	require.True(t, me.User.IsAdmin)
	resp, err = http.Get(base + "/api/v1/me")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "not without the token")

	require.Eventually(t, func() bool {
		resp := api("/api/v1/audit?action=flux.BuildFailed")
		defer resp.Body.Close()
		var page struct {
			Items []struct{ Message string } `json:"items"`
		}
		if json.NewDecoder(resp.Body).Decode(&page) != nil || len(page.Items) != 1 {
			return false
		}
		return strings.Contains(page.Items[0].Message, "MalformedYAMLError")
	}, 5*time.Second, 50*time.Millisecond, "the worker processed the event")

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	require.NoError(t, cmd.Wait())
	stopped = true
	require.Contains(t, logs.String(), "devenv | stopping")
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "the receiver is gone")
}
