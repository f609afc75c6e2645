// Command worker runs fluxbridge's River jobs (Flux event processing, commit-and-push, applies,
// deletes and reconciles of Flux objects, and later rollbacks, alerts, backups and scans)
// and the watch of every managed cluster. It serves /metrics and /healthz on its own
// address.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/fluxbridge/fluxbridge/cmd/internal/boot"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/watch"
)

const (
	readHeaderTimeout = 5 * time.Second
	maxHeaderBytes    = 16 << 10 // 16 KiB
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	p, err := boot.Start(ctx, getenv, "worker", true)
	if err != nil {
		return err
	}
	defer p.Pool.Close()
	cfg, log, pool := p.Config, p.Log, p.Pool

	sec, err := p.Secrets()
	if err != nil {
		return err
	}
	reg, err := p.Clusters()
	if err != nil {
		return err
	}
	locks, err := store.NewPushLocks(ctx, pool, jobs.GitWorkers)
	if err != nil {
		return err
	}
	defer locks.Close()
	git := p.Git("worker")

	m := metrics.New()
	st := store.New(pool)
	workers := river.NewWorkers()
	if err := jobs.Register(workers, jobs.Deps{
		Store: st, Metrics: m, IsAncestor: jobs.GitAncestor(st, git, sec), CommitAuthor: jobs.GitCommitAuthor(st, git, sec),
		Git: git, Secrets: sec, PushLocks: locks, Clusters: reg, AlertTargets: alertTargets(cfg),
		Committer: p.Committer(), Retention: retention(cfg),
	}); err != nil {
		return fmt.Errorf("register workers: %w", err)
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:       logging.Slog(log),
		Queues:       jobs.Queues(),
		Workers:      workers,
		PeriodicJobs: jobs.PeriodicJobs(),
		Middleware:   jobs.Middleware(log, m),
		// A job whose worker died is retried minutes after its timeout, not River's hour later.
		RescueStuckJobsAfter: jobs.RescueStuckJobsAfter,
	})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	srv := &http.Server{Addr: cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: readHeaderTimeout, MaxHeaderBytes: maxHeaderBytes}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	if err := rc.Start(ctx); err != nil {
		return fmt.Errorf("start river: %w", err)
	}
	// The watch of every managed cluster, led by one worker replica per cluster.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		watch.Run(wctx, watch.Deps{Store: st, LockConn: pool.Config().ConnConfig.Copy(), Clusters: reg.Managed(),
			IsAncestor: jobs.GitAncestor(st, git, sec), CommitAuthor: jobs.GitCommitAuthor(st, git, sec), River: rc, Logger: log})
	}()
	log.Info().Str("metrics_addr", cfg.MetricsAddr).Int("watched_clusters", len(reg.Managed())).Msg("working")

	select {
	case err := <-errc:
		_ = rc.Stop(context.WithoutCancel(ctx))
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	stopWatch()
	<-watchDone
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := rc.Stop(sctx); err != nil {
		log.Warn().Err(err).Msg("soft stop timed out; cancelling running jobs")
		_ = rc.StopAndCancel(context.Background())
	}
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// retention is the configured (or default) retention of each growing table.
func retention(cfg *config.Config) store.Retention {
	fe, n, h, a := cfg.Retention.Durations()
	return store.Retention{FluxEvents: fe, Notifications: n, ReconciliationHistory: h, Audit: a}
}
