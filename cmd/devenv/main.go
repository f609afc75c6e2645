// Command devenv runs fluxbridge on a developer machine and gives tests their Postgres.
//
//	devenv run              start the embedded Postgres (unless DATABASE_URL is set), then every
//	                        Procfile process with prefixed output, until Ctrl-C
//	devenv migrate          apply migrations to DATABASE_URL or the embedded Postgres
//	devenv test -- CMD...   run CMD with a throwaway Postgres cluster in FLUXBRIDGE_TEST_DATABASE_URL,
//	                        removed afterwards; exits with CMD's status. The cluster runs without
//	                        fsync for speed, unless PG_DURABLE=1 (benchmarks of the durable path)
//
// The embedded Postgres lives in .data/pg (git-ignored) and uses the server binaries of the
// machine (Debian: /usr/lib/postgresql/<version>/bin).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/fluxbridge/fluxbridge/internal/pgembed"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/migrations"
)

// dataDir holds the embedded Postgres cluster and the generated local config.
const dataDir = ".data"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "devenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("usage: devenv run | migrate | test -- CMD [ARGS...]")
	}
	switch args[0] {
	case "run":
		return 0, runProcfile(ctx, "Procfile")
	case "migrate":
		return 0, migrate(ctx)
	case "test":
		rest := args[1:]
		if len(rest) > 0 && rest[0] == "--" {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return 2, errors.New("usage: devenv test -- CMD [ARGS...]")
		}
		return withTestDatabase(ctx, rest)
	}
	return 2, fmt.Errorf("unknown command %q", args[0])
}

// embedded starts the persistent local Postgres and returns it with its URL.
func embedded(ctx context.Context) (*pgembed.Server, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{DataDir: dataDir + "/pg", Durable: true})
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	return srv, nil
}

func migrate(ctx context.Context) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		srv, err := embedded(ctx)
		if err != nil {
			return err
		}
		defer srv.Stop()
		url = srv.URL("")
	}
	pool, err := store.Open(ctx, url, 0)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := migrations.Up(ctx, pool)
	if err != nil {
		return err
	}
	fmt.Printf("migrated: goose %v, river %v\n", res.Goose, res.River)
	return nil
}

// withTestDatabase runs argv with a throwaway cluster and returns its exit status.
func withTestDatabase(ctx context.Context, argv []string) (int, error) {
	srv, err := pgembed.Start(ctx, pgembed.Options{Database: "postgres", Durable: os.Getenv("PG_DURABLE") == "1"})
	if err != nil {
		return 1, err
	}
	defer srv.Stop()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "FLUXBRIDGE_TEST_DATABASE_URL="+srv.URL("postgres"))
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	// The command shares our terminal's process group and gets Ctrl-C itself; we only wait.
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, err
}
