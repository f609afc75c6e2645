package kubetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// reaperScript collects paths, one per line, from stdin until EOF, which
// comes when the test process closes the pipe or dies (a panic or -timeout
// in a test skips every deferred Stop). It then kills every process whose
// command line names a path inside the Env's work directory $1 (etcd,
// kube-apiserver and the workloads all have flags pointing into it), and
// removes that directory (unless $2 is "keep") and the collected paths. SIGKILL, because all of it
// is disposable and a kube-apiserver whose etcd goes away at the same time
// can take long to stop gracefully. The trailing slash keeps
// /tmp/kubetest-1/ from matching /tmp/kubetest-12/.
const reaperScript = `
extra=
while IFS= read -r line; do extra="$extra$line
"; done
pids=
for f in /proc/[0-9]*/cmdline; do
	p=${f#/proc/}; p=${p%/cmdline}
	[ "$p" = "$$" ] && continue
	if tr '\0' '\n' < "$f" 2>/dev/null | grep -qF -- "$1/"; then pids="$pids $p"; fi
done
[ -z "$pids" ] || kill -KILL $pids 2>/dev/null
[ "$2" = keep ] || rm -rf -- "$1"
printf '%s' "$extra" | while IFS= read -r p; do [ -z "$p" ] || rm -rf -- "$p"; done
`

// reaper is a shell process that cleans up after an Env whose test process
// died without calling Stop.
type reaper struct {
	cmd  *exec.Cmd
	pipe *os.File // write end of the reaper's stdin
}

// startReaper starts the reaper for the Env working in dir; with keep it leaves dir in place.
func startReaper(dir string, keep bool) (*reaper, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start reaper: %w", err)
	}
	mode := "remove"
	if keep {
		mode = "keep"
	}
	cmd := exec.Command("/bin/sh", "-c", reaperScript, "kubetest-reaper", dir, mode)
	cmd.Stdin = r
	// Its own process group, so that a Ctrl-C does not kill it along with
	// the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start reaper: %w", err), r.Close(), w.Close())
	}
	if err := r.Close(); err != nil {
		return nil, errors.Join(fmt.Errorf("start reaper: %w", err), w.Close(), cmd.Process.Kill())
	}
	return &reaper{cmd: cmd, pipe: w}, nil
}

// alsoRemove has the reaper remove path too, for files envtest creates
// outside the Env's directory.
func (r *reaper) alsoRemove(path string) error {
	if r == nil || path == "" {
		return nil
	}
	if _, err := fmt.Fprintln(r.pipe, path); err != nil {
		return fmt.Errorf("tell reaper: %w", err)
	}
	return nil
}

// stop lets the reaper run now, after a regular Stop, and waits for it. It
// finds nothing to kill unless Stop failed to stop a process.
func (r *reaper) stop() error {
	if r == nil {
		return nil
	}
	if err := r.pipe.Close(); err != nil {
		return fmt.Errorf("stop reaper: %w", err)
	}
	if err := r.cmd.Wait(); err != nil {
		return fmt.Errorf("stop reaper: %w", err)
	}
	return nil
}
