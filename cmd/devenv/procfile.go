package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/config"
)

// procStopTimeout is how long processes get to stop after SIGTERM before SIGKILL.
const procStopTimeout = 15 * time.Second

type proc struct {
	name, command string
}

// parseProcfile reads "name: command" lines; blank lines and # comments are skipped.
func parseProcfile(path string) ([]proc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []proc
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(cmd) == "" {
			return nil, fmt.Errorf("%s:%d: want \"name: command\"", path, i+1)
		}
		out = append(out, proc{strings.TrimSpace(name), strings.TrimSpace(cmd)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no processes", path)
	}
	return out, nil
}

// runProcfile runs every Procfile process with the local environment until ctx ends or one of
// them exits; then it stops the others, as foreman does. Without DATABASE_URL and
// FLUXBRIDGE_CONFIG it also brings up the sandbox (sandbox.go): the processes start at once,
// and start again with the sandbox cluster in their config once it is ready.
func runProcfile(ctx context.Context, path string) error {
	procs, err := parseProcfile(path)
	if err != nil {
		return err
	}
	env := os.Environ()
	withSandbox := os.Getenv("DATABASE_URL") == "" && os.Getenv("FLUXBRIDGE_CONFIG") == "" && os.Getenv(envSandbox) != "0"
	if os.Getenv("DATABASE_URL") == "" {
		srv, err := embedded(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop()
		env = append(env, "DATABASE_URL="+srv.URL(""))
		fmt.Printf("devenv | embedded postgres on 127.0.0.1:%d (data in %s)\n", srv.Port(), srv.DataDir())
	}
	addr := cmp.Or(os.Getenv("LISTEN_ADDR"), config.DefaultListenAddr)
	var sb *sandboxRun
	if withSandbox {
		if sb, err = newSandboxRun(addr); err != nil {
			return err
		}
		env = append(env, "FLUXBRIDGE_CONFIG="+sb.configPath)
	} else if os.Getenv("FLUXBRIDGE_CONFIG") == "" {
		cfg, err := localConfig()
		if err != nil {
			return err
		}
		env = append(env, "FLUXBRIDGE_CONFIG="+cfg)
	}
	tokenFile := os.Getenv(config.EnvBootstrapAdminTokenFile)
	if tokenFile == "" {
		if tokenFile, err = filepath.Abs(filepath.Join(dataDir, "admin-token")); err != nil {
			return err
		}
		env = append(env, config.EnvBootstrapAdminTokenFile+"="+tokenFile)
		fmt.Printf("devenv | admin API token: %s (written by the receiver on first start)\n", filepath.Join(dataDir, "admin-token"))
		fmt.Printf("devenv |   curl -H \"Authorization: Bearer $(cat %s)\" http://%s/api/v1/me\n", filepath.Join(dataDir, "admin-token"), addr)
	}
	if os.Getenv(config.EnvBootstrapAdminPasswordFile) == "" {
		path, err := filepath.Abs(filepath.Join(dataDir, "admin-password"))
		if err != nil {
			return err
		}
		pw, err := localPassword(path)
		if err != nil {
			return err
		}
		env = append(env, config.EnvBootstrapAdminPasswordFile+"="+path)
		fmt.Printf("devenv | console: %s — sign in as %s with password %s (kept in %s)\n",
			consoleURL(addr), auth.BootstrapUsername, pw, filepath.Join(dataDir, "admin-password"))
	}
	if os.Getenv("LOG_FORMAT") == "" {
		env = append(env, "LOG_FORMAT=console")
	}

	out := &printer{}
	g, err := startGroup(procs, env, out)
	if err != nil {
		return err
	}
	var sbReady chan bool
	if sb != nil {
		sb.out, sb.tokenFile = out, tokenFile
		sbReady = make(chan bool, 1)
		go func() { sbReady <- sb.start(ctx) }()
	}
	for {
		select {
		case <-ctx.Done():
			out.line("devenv | stopping")
			if sbReady != nil {
				<-sbReady // the sandbox's start ends with ctx and stops what it started
			}
			if sb != nil {
				sb.stopControllers()
			}
			g.stop()
			if sb != nil {
				sb.stop()
			}
			return nil
		case msg := <-g.exited:
			out.line("devenv | " + msg + "; stopping the others")
			if sbReady != nil {
				<-sbReady
			}
			g.stop()
			if sb != nil {
				sb.stop()
			}
			return nil
		case ok := <-sbReady:
			sbReady = nil
			if !ok {
				sb = nil
				continue
			}
			// The processes read their clusters once, at start: they start again with the
			// sandbox cluster in their config.
			out.line("sandbox | cluster " + sandboxCluster + " is ready: restarting receiver and worker with it")
			g.stop()
			if g, err = startGroup(procs, env, out); err != nil {
				sb.stop()
				return err
			}
			go sb.seed(ctx)
		}
	}
}

// printer writes whole lines of several writers without interleaving them.
type printer struct{ mu sync.Mutex }

func (p *printer) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Println(s)
}

// group is one start of the Procfile's processes.
type group struct {
	cmds   []*exec.Cmd
	exited chan string
}

// startGroup starts every process with env, their output prefixed with their names.
func startGroup(procs []proc, env []string, out *printer) (*group, error) {
	g := &group{cmds: make([]*exec.Cmd, len(procs)), exited: make(chan string, len(procs))}
	width := len("sandbox")
	for _, p := range procs {
		width = max(width, len(p.name))
	}
	for i, p := range procs {
		cmd := exec.Command("/bin/sh", "-c", "exec "+p.command)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			stopAll(g.cmds)
			return nil, fmt.Errorf("start %s: %w", p.name, err)
		}
		g.cmds[i] = cmd
		prefix := fmt.Sprintf("%-*s | ", width, p.name)
		go func() {
			copyPrefixed(out, prefix, stdout)
			err := cmd.Wait()
			g.exited <- fmt.Sprintf("%s exited: %v", p.name, err)
		}()
	}
	return g, nil
}

// stop stops the group's processes: SIGTERM, then SIGKILL after procStopTimeout.
func (g *group) stop() { stopAll(g.cmds) }

// localPassword returns the local admin's console password, generating it on the first run.
// It is a local sandbox's password on the developer's own machine, so it is printed.
func localPassword(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	pw, err := auth.NewPassword()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return pw, os.WriteFile(path, []byte(pw+"\n"), 0o600)
}

// consoleURL is the browser address of a listen address (":8080" is localhost).
func consoleURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

func copyPrefixed(out *printer, prefix string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out.line(prefix + sc.Text())
	}
}

func stopAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(procStopTimeout)
	for _, c := range cmds {
		if c == nil || c.Process == nil {
			continue
		}
		for syscall.Kill(c.Process.Pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}

// localConfig writes .data/fluxbridge.yaml on first use: one cluster, "local", with a random
// webhook token, and prints how to point notification-controller at it.
func localConfig() (string, error) {
	path, err := filepath.Abs(filepath.Join(dataDir, "fluxbridge.yaml"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	token := hex.EncodeToString(tok)
	body := fmt.Sprintf(`# Written by devenv for local runs. Point a notification-controller Provider of type
# generic-hmac at http://<this host>:8080/hooks/flux/local with this token in its Secret.
clusters:
  - name: local
    webhookToken: %s
`, token)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return "", err
	}
	fmt.Printf("devenv | wrote %s (cluster \"local\", webhook token in the file)\n", path)
	return path, nil
}
