package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// ProcessSpec describes a host process for StartProcess.
type ProcessSpec struct {
	// Name identifies the process within the Env; it names its log file.
	// A DNS-label-like name: lowercase letters, digits and '-'.
	Name string
	// Path is the program to run.
	Path string
	// Args are its arguments.
	Args []string
	// Env is added to the test process's environment, e.g.
	// "KUBECONFIG="+env.KubeconfigPath().
	Env []string
}

// Process is a host process started by StartProcess, such as a Flux
// controller run against the Env's apiserver.
type Process struct {
	p *hostProcess
}

var processName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// StartProcess starts a program next to the Env's control plane and returns
// at once; readiness is the caller's to check. The process writes its output
// to LogPath, is stopped by Stop before the apiserver, and is killed by the
// Env's reaper if the test process dies: it is run through a link inside the
// Env's work directory, so its command line names that directory.
func (e *Env) StartProcess(spec ProcessSpec) (*Process, error) {
	if !processName.MatchString(spec.Name) {
		return nil, fmt.Errorf("start process: name %q: want a DNS label", spec.Name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil, errors.New("start process: env is stopped")
	}
	for _, p := range e.procs {
		if p.name == spec.Name {
			return nil, fmt.Errorf("start process: %s is already running", spec.Name)
		}
	}
	dir := filepath.Join(e.dir, "procs", spec.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start process %s: %w", spec.Name, err)
	}
	target, err := filepath.Abs(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("start process %s: %w", spec.Name, err)
	}
	if _, err := os.Stat(target); err != nil {
		return nil, fmt.Errorf("start process %s: %w", spec.Name, err)
	}
	link := filepath.Join(dir, spec.Name)
	if err := os.Symlink(target, link); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("start process %s: %w", spec.Name, err)
	}
	hp, err := startHostProcess(dir, link, spec.Env, spec.Args...)
	if err != nil {
		return nil, err
	}
	hp.name = spec.Name
	e.procs = append(e.procs, hp)
	return &Process{p: hp}, nil
}

// Dir returns a directory named name inside the Env's work directory,
// creating it: storage for a process (source-controller's artifacts) that
// is removed with the Env.
func (e *Env) Dir(name string) (string, error) {
	if !processName.MatchString(name) {
		return "", fmt.Errorf("env dir: name %q: want a DNS label", name)
	}
	d := filepath.Join(e.dir, "data", name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("env dir %s: %w", name, err)
	}
	return d, nil
}

// Name returns the process's name.
func (p *Process) Name() string { return p.p.name }

// LogPath returns the file holding the process's stdout and stderr.
func (p *Process) LogPath() string { return p.p.logPath }

// LogTail returns the end of the process log, for failure messages.
func (p *Process) LogTail() string { return p.p.logTail() }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) { return p.p.exited() }

// Stop sends SIGTERM and, after a grace period, SIGKILL. Stopping a process
// that has exited is not an error; Env.Stop stops whatever is still running.
func (p *Process) Stop() error { return p.p.stop() }

// stopProcs stops the processes of StartProcess in reverse start order.
func (e *Env) stopProcs() error {
	var errs []error
	for i := len(e.procs) - 1; i >= 0; i-- {
		errs = append(errs, e.procs[i].stop())
	}
	e.procs = nil
	return errors.Join(errs...)
}
