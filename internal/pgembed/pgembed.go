// Package pgembed runs a private PostgreSQL server from the binaries installed on the machine
// (Debian's postgresql package puts them under /usr/lib/postgresql/<version>/bin). It backs the
// embedded default database of `make run` and the throwaway clusters of `make test`.
//
// initdb and postgres refuse to run as root, so when the caller is root the server runs as the
// unprivileged "postgres" user (through runuser) on a directory that user owns.
package pgembed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries means no PostgreSQL server binaries were found on the machine.
var ErrNoBinaries = errors.New("postgres server binaries not found (install Debian's postgresql package, or set PG_BIN to the directory holding initdb and postgres)")

// startTimeout bounds how long Start waits for the server to accept connections.
const startTimeout = 30 * time.Second

// Options configure Start.
type Options struct {
	// DataDir is the cluster directory. It is created and initialised when it holds no cluster.
	// Empty means a new temporary directory that Stop removes.
	DataDir string
	// Port is the loopback TCP port; 0 picks a free one.
	Port int
	// Database is created when missing; empty means "fluxbridge".
	Database string
	// BinDir holds initdb and postgres; empty means PG_BIN or the newest /usr/lib/postgresql/*/bin.
	BinDir string
	// Durable keeps fsync on. Throwaway clusters run without it, which makes tests much faster.
	Durable bool
	// LogFile receives the server log; empty means <DataDir>/postgres.log.
	LogFile string
}

// Server is a running PostgreSQL server.
type Server struct {
	cmd      *exec.Cmd
	dataDir  string
	port     int
	database string
	temp     bool
	exited   chan struct{}
}

// FindBinDir returns the directory holding initdb and postgres: $PG_BIN, else the newest
// /usr/lib/postgresql/<version>/bin, else wherever initdb is on PATH.
func FindBinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			return "", fmt.Errorf("PG_BIN=%s: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the cluster if needed, starts the server on 127.0.0.1 and waits until the
// database accepts connections. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	s := &Server{dataDir: opts.DataDir, port: opts.Port, database: opts.Database, exited: make(chan struct{})}
	if s.database == "" {
		s.database = "fluxbridge"
	}
	runAs, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	if s.dataDir == "" {
		parent, err := os.MkdirTemp("", "fluxbridge-pg-")
		if err != nil {
			return nil, fmt.Errorf("create temp dir: %w", err)
		}
		s.temp = true
		s.dataDir = filepath.Join(parent, "data")
	}
	if s.dataDir, err = filepath.Abs(s.dataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := chownTree(s.dataDir, s.temp, runAs); err != nil {
		s.cleanup()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		out, err := command(ctx, runAs, filepath.Join(binDir, "initdb"),
			"-D", s.dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput()
		if err != nil {
			s.cleanup()
			return nil, fmt.Errorf("initdb: %w: %s", err, lastLines(out, 5))
		}
	}
	if s.port == 0 {
		if s.port, err = freePort(); err != nil {
			s.cleanup()
			return nil, err
		}
	}
	logFile := opts.LogFile
	if logFile == "" {
		logFile = filepath.Join(s.dataDir, "postgres.log")
	}
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("open postgres log: %w", err)
	}
	defer lf.Close()
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(s.port), "-k", s.dataDir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	// Not bound to ctx: the server outlives the start request and ends with Stop.
	s.cmd = command(context.Background(), runAs, filepath.Join(binDir, "postgres"), args...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, logFile); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// URL returns a connection string for database db on this server ("" means the default one).
func (s *Server) URL(db string) string {
	if db == "" {
		db = s.database
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port returns the loopback port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir returns the cluster directory.
func (s *Server) DataDir() string { return s.dataDir }

// Stop shuts the server down (fast mode) and removes a temporary cluster directory.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGINT is postgres' fast shutdown; the group also holds runuser when we are root.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	s.cleanup()
	return nil
}

func (s *Server) cleanup() {
	if s.temp {
		_ = os.RemoveAll(filepath.Dir(s.dataDir))
	}
}

func (s *Server) waitReady(ctx context.Context, logFile string) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
	for {
		conn, err := pgx.Connect(ctx, admin)
		if err == nil {
			defer conn.Close(ctx)
			var exists bool
			if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", s.database).Scan(&exists); err != nil {
				return fmt.Errorf("look up database: %w", err)
			}
			if !exists {
				if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.database}.Sanitize()); err != nil {
					return fmt.Errorf("create database %s: %w", s.database, err)
				}
			}
			return nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("postgres exited during start: %s", lastLines(log, 8))
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready after %s: %w", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unprivilegedUser returns the user to run the server as when we are root, else nil.
func unprivilegedUser() (*user.User, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the unprivileged postgres user (Debian's postgresql package creates it): %w", err)
	}
	return u, nil
}

// command runs name as u (via runuser) when u is set.
func command(ctx context.Context, u *user.User, name string, args ...string) *exec.Cmd {
	if u == nil {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", u.Username, "--", name}, args...)...)
}

// chownTree gives u the data dir, and its parent when that is our temp dir.
func chownTree(dataDir string, temp bool, u *user.User) error {
	if u == nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if temp {
		if err := os.Chown(filepath.Dir(dataDir), uid, gid); err != nil {
			return fmt.Errorf("chown %s to %s: %w", filepath.Dir(dataDir), u.Username, err)
		}
	}
	return filepath.Walk(dataDir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(b, nil))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
