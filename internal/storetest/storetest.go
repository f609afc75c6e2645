// Package storetest gives tests a real, migrated Postgres database.
//
// `make test` starts one throwaway Postgres cluster and passes its admin URL in
// FLUXBRIDGE_TEST_DATABASE_URL. Without it (plain `go test` on one package), Main starts a
// private cluster for the test binary with pgembed. Each test gets its own database cloned from
// a migrated template, so tests can commit, run River clients and use t.Parallel freely.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fluxbridge/fluxbridge/internal/pgembed"
	"github.com/fluxbridge/fluxbridge/migrations"
)

// EnvURL names the variable holding the admin URL of a test Postgres cluster.
const EnvURL = "FLUXBRIDGE_TEST_DATABASE_URL"

var (
	adminURL string
	tmplOnce sync.Once
	tmplName string
	tmplErr  error
	dbSeq    atomic.Int64
)

// Main runs a package's tests with a Postgres cluster available: the one named by
// FLUXBRIDGE_TEST_DATABASE_URL, or a private one it starts and removes. Call it from TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it runs m with a Postgres cluster available and returns the
// exit code, for a TestMain that also starts other things (a kube-apiserver) around it.
func Run(m *testing.M) int {
	stop, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storetest:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// Start makes a Postgres cluster available to NewDB and Tx, as Main does, for a TestMain that
// also starts other things: the one named by FLUXBRIDGE_TEST_DATABASE_URL, or a private one
// that stop removes.
func Start() (stop func(), err error) {
	adminURL = os.Getenv(EnvURL)
	if adminURL != "" {
		return func() {}, nil
	}
	srv, err := pgembed.Start(context.Background(), pgembed.Options{Database: "postgres"})
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	adminURL = srv.URL("postgres")
	return func() { _ = srv.Stop() }, nil
}

// NewDB returns a pool on a new database holding the complete, migrated schema (River's tables
// included). The database is dropped when the test ends.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, drop, err := OpenDB(context.Background())
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(drop)
	return pool
}

// OpenDB is NewDB for a database that outlives one test, such as one a TestMain shares between
// the tests of a package: drop closes the pool and drops the database.
func OpenDB(ctx context.Context) (pool *pgxpool.Pool, drop func(), err error) {
	if adminURL == "" {
		return nil, nil, errors.New("call storetest.Main or storetest.Start from TestMain")
	}
	tmplOnce.Do(func() { tmplName, tmplErr = ensureTemplate(ctx) })
	if tmplErr != nil {
		return nil, nil, fmt.Errorf("template database: %w", tmplErr)
	}
	name := fmt.Sprintf("fbtest_%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, nil, fmt.Errorf("connect admin: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmplName)); err != nil {
		return nil, nil, fmt.Errorf("create database: %w", err)
	}
	pool, err = pgxpool.New(ctx, withDatabase(adminURL, name))
	if err != nil {
		return nil, nil, fmt.Errorf("open pool: %w", err)
	}
	drop = func() {
		pool.Close()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	}
	return pool, drop, nil
}

// Tx returns a transaction on a fresh database that is rolled back when the test ends.
func Tx(t testing.TB) pgx.Tx {
	t.Helper()
	pool := NewDB(t)
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatalf("storetest: begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

// ensureTemplate creates, once per schema version across all test processes, a migrated
// database to clone. Its name carries a hash of the migration files, so a schema change makes
// a new template rather than reusing a stale one.
func ensureTemplate(ctx context.Context) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS(), p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "fbtmpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("connect admin: %w", err)
	}
	defer admin.Close(ctx)
	// Test binaries of several packages run at once: one builds the template, the others wait.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7243001)"); err != nil {
		return "", err
	}
	defer func() { _, _ = admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7243001)") }()
	var ready bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&ready); err != nil {
		return "", err
	}
	if ready {
		return name, nil
	}
	_, _ = admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", name)); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	pool, err := pgxpool.New(ctx, withDatabase(adminURL, name))
	if err != nil {
		return "", err
	}
	mctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_, err = migrations.Up(mctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s WITH IS_TEMPLATE true", name)); err != nil {
		return "", err
	}
	return name, nil
}

// withDatabase replaces the database name in a postgres:// URL.
func withDatabase(url, db string) string {
	rest, query, _ := strings.Cut(url, "?")
	if i := strings.LastIndex(rest, "/"); i > len("postgres://") {
		rest = rest[:i]
	}
	if query != "" {
		return rest + "/" + db + "?" + query
	}
	return rest + "/" + db
}
