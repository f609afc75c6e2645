// Package migrations holds fluxbridge's schema as goose SQL files embedded in the binary, and
// applies them together with River's own tables.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded goose migrations.
func FS() fs.FS { return files }

// lockKey serialises migrations across processes that start at the same time (receiver and
// worker replicas); any constant that no other advisory-lock user picks will do.
const lockKey int64 = 0x666c7578_6d696772 // "fluxmigr"

// Result tells what Up applied.
type Result struct {
	Goose []string // file names applied by goose
	River []int    // River migration versions applied
}

// Up applies every pending goose migration and River's migrations, holding a Postgres advisory
// lock so that concurrent callers wait for each other instead of racing. It is a no-op when the
// schema is current.
//
// It runs on a small pool of its own, so that callers waiting for the lock never hold the
// connections of the caller's pool that the lock holder needs.
func Up(ctx context.Context, appPool *pgxpool.Pool) (Result, error) {
	var res Result
	cfg := appPool.Config().Copy()
	cfg.MaxConns, cfg.MinConns = 3, 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("open migration pool: %w", err)
	}
	defer pool.Close()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("acquire connection for migration lock: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return res, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey)
	}()

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, files)
	if err != nil {
		return res, fmt.Errorf("goose provider: %w", err)
	}
	applied, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("goose up: %w", err)
	}
	for _, r := range applied {
		res.Goose = append(res.Goose, r.Source.Path)
	}

	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return res, fmt.Errorf("river migrator: %w", err)
	}
	rr, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("river migrate: %w", err)
	}
	for _, v := range rr.Versions {
		res.River = append(res.River, v.Version)
	}
	return res, nil
}
