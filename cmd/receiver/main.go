// Command receiver serves fluxbridge's HTTP side: the Flux notification-controller webhook and
// the JSON API. It writes rows and enqueues River jobs; the worker runs them.
//
// "receiver migrate" applies the database migrations and exits (the Helm chart's migration Job).
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
	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/console"
	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/metrics"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// HTTP server limits.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10 // 64 KiB
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runFn := run
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		runFn = migrate
	}
	if err := runFn(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "receiver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	p, err := boot.Start(ctx, getenv, "receiver", true)
	if err != nil {
		return err
	}
	defer p.Pool.Close()
	cfg, log, pool := p.Config, p.Log, p.Pool

	st := store.New(pool)
	if cfg.BootstrapAdminTokenFile != "" {
		res, err := auth.Bootstrap(ctx, st, cfg.BootstrapAdminTokenFile)
		if err != nil {
			return err
		}
		if res.Created {
			// The token itself never goes to the log; it is in the file.
			log.Warn().Str("user", res.Username).Str("token_file", cfg.BootstrapAdminTokenFile).Bool("generated", res.Generated).
				Msg("no admin existed: bootstrapped one with the API token in the token file")
		}
	}
	if cfg.BootstrapAdminPasswordFile != "" {
		set, err := auth.BootstrapPassword(ctx, st, cfg.BootstrapAdminPasswordFile)
		if err != nil {
			return err
		}
		if set {
			// The password itself never goes to the log; it is in the file.
			log.Warn().Str("user", auth.BootstrapUsername).Str("password_file", cfg.BootstrapAdminPasswordFile).
				Msg("gave the bootstrap admin the console password in the password file")
		}
	}

	// Insert-only River client: no queues, so it never works jobs.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: logging.Slog(log)})
	if err != nil {
		return fmt.Errorf("river client: %w", err)
	}
	tokens := make(map[string][]byte, len(cfg.Clusters))
	for _, c := range cfg.Clusters {
		tokens[c.Name] = []byte(c.WebhookToken)
	}
	sec, err := p.Secrets()
	if err != nil {
		return err
	}
	reg, err := p.Clusters()
	if err != nil {
		return err
	}
	// One LISTEN connection per receiver fans the change feed out to every open event stream.
	hub := feed.NewHub(pool, log)
	go func() {
		if err := hub.Run(ctx); err != nil {
			log.Error().Err(err).Msg("change feed hub stopped")
		}
	}()
	sessions := &auth.Sessions{Store: st, Secure: cfg.Secure()}
	h := handlers.New(handlers.Deps{
		Store: st, River: rc, WebhookTokens: tokens, Metrics: metrics.New(), Logger: log,
		// API tokens for the API, session cookies for the console (and its event streams).
		Authenticator: auth.Chain{auth.NewTokenAuthenticator(st), sessions},
		// Previews and validation read repositories; the receiver's clones live apart from the worker's.
		Git:     p.Git("receiver"),
		Secrets: sec, Clusters: reg, Committer: p.Committer(), Feed: hub,
	})
	pages, err := console.New(console.Deps{Core: h, Sessions: sessions, Logger: log})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr: cfg.ListenAddr, Handler: h.Routes(pages),
		ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
		IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info().Str("addr", cfg.ListenAddr).Msg("listening")

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// migrate applies pending migrations and returns.
func migrate(ctx context.Context, getenv func(string) string) error {
	p, err := boot.Start(ctx, getenv, "migrate", false)
	if err != nil {
		return err
	}
	defer p.Pool.Close()
	return boot.Migrate(ctx, p.Log, p.Pool)
}
