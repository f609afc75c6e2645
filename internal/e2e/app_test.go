package e2e

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/console"
	"github.com/fluxbridge/fluxbridge/internal/feed"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/internal/watch"
)

// The cluster fluxbridge knows the rig's apiserver as, and the token of its webhook.
const (
	clusterName  = "e2e"
	webhookToken = "e2e-webhook-token-8d2f6a41c0b7"
)

// committer is the bot identity of the rig's fluxbridge.
var committer = gitops.Signature{Name: config.DefaultGitBotName, Email: "bot@fluxbridge.e2e"}

// app is fluxbridge's receiver and worker, wired as cmd/receiver and cmd/worker wire them,
// running in the test process on a database of their own.
type app struct {
	pool   *pgxpool.Pool
	st     *store.Store
	url    string // the receiver's base URL
	admin  string // API token of the bootstrapped admin
	logs   *logBuffer
	srv    *http.Server
	worker *river.Client[pgx.Tx]
	locks  *store.PushLocks
	drop   func()

	stopWatch func()
	watchDone chan struct{}
	stopHub   func()
}

// adminPassword is the bootstrapped admin's console password.
const adminPassword = "e2e-console-password-3f9a"

// startApp starts fluxbridge against the rig's cluster.
func startApp(ctx context.Context, r *Rig) (a *app, err error) {
	a = &app{logs: &logBuffer{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.stop())
		}
	}()
	if a.pool, a.drop, err = storetest.OpenDB(ctx); err != nil {
		return a, err
	}
	a.st = store.New(a.pool)
	log := zerolog.New(a.logs).Level(zerolog.InfoLevel).With().Timestamp().Logger()

	tokenFile := filepath.Join(r.dir, "admin-token")
	if _, err := auth.Bootstrap(ctx, a.st, tokenFile); err != nil {
		return a, err
	}
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return a, err
	}
	a.admin = strings.TrimSpace(string(tok))
	// The admin's console password, as `make run` gives it.
	pwFile := filepath.Join(r.dir, "admin-password")
	if err := os.WriteFile(pwFile, []byte(adminPassword+"\n"), 0o600); err != nil {
		return a, err
	}
	if _, err := auth.BootstrapPassword(ctx, a.st, pwFile); err != nil {
		return a, err
	}

	sec, err := secrets.NewFileStore(filepath.Join(r.dir, "secrets"))
	if err != nil {
		return a, err
	}
	// The rig's cluster, as a config file would give it: the receiver listens first, so that
	// its address is the receiver URL the worker wires into the cluster's Provider.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return a, err
	}
	a.url = "http://" + l.Addr().String()
	reg, err := cluster.NewRegistry([]cluster.Spec{{Name: clusterName, Kubeconfig: r.Env.KubeconfigPath(), FluxNamespace: fluxNamespace}}, r.Env.Scheme)
	if err != nil {
		return a, err
	}

	// Receiver: an insert-only River client behind the API and the webhook.
	rc, err := river.NewClient(riverpgxv5.New(a.pool), &river.Config{Logger: logging.Slog(log)})
	if err != nil {
		return a, err
	}
	// The change feed and the console, as cmd/receiver wires them.
	hctx, stopHub := context.WithCancel(context.Background())
	a.stopHub = stopHub
	hub := feed.NewHub(a.pool, log)
	go func() { _ = hub.Run(hctx) }()
	sessions := &auth.Sessions{Store: a.st}
	rlog := log.With().Str("svc", "receiver").Logger()
	h := handlers.New(handlers.Deps{
		Store: a.st, River: rc, Logger: rlog,
		Authenticator: auth.Chain{auth.NewTokenAuthenticator(a.st), sessions},
		WebhookTokens: map[string][]byte{clusterName: []byte(webhookToken)},
		Git:           gitops.NewWriter(filepath.Join(r.dir, "git-cache", "receiver")),
		Secrets:       sec, Clusters: reg, Committer: committer, Feed: hub,
	})
	pages, err := console.New(console.Deps{Core: h, Sessions: sessions, Logger: rlog})
	if err != nil {
		return a, err
	}
	a.srv = &http.Server{Handler: h.Routes(pages), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.srv.Serve(l) }()

	// Worker.
	if a.locks, err = store.NewPushLocks(ctx, a.pool, jobs.GitWorkers); err != nil {
		return a, err
	}
	git := gitops.NewWriter(filepath.Join(r.dir, "git-cache", "worker"))
	workers := river.NewWorkers()
	wlog := log.With().Str("svc", "worker").Logger()
	if err := jobs.Register(workers, jobs.Deps{
		Store: a.st, IsAncestor: jobs.GitAncestor(a.st, git, sec), CommitAuthor: jobs.GitCommitAuthor(a.st, git, sec),
		Git: git, Secrets: sec, PushLocks: a.locks, Clusters: reg,
		AlertTargets: map[string]jobs.AlertTarget{clusterName: {ReceiverURL: a.url, Token: webhookToken}},
		Committer:    committer,
		// Snoozes of a reconcile or rollback that waits for Flux; the default is 1s.
		ReconcilePoll: 250 * time.Millisecond,
	}); err != nil {
		return a, err
	}
	a.worker, err = river.NewClient(riverpgxv5.New(a.pool), &river.Config{
		Logger: logging.Slog(wlog), Queues: jobs.Queues(), Workers: workers,
		PeriodicJobs: jobs.PeriodicJobs(), Middleware: jobs.Middleware(wlog, nil),
		// The defaults poll every second; the latency figures measure fluxbridge, not idle waits.
		FetchCooldown: 20 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return a, err
	}
	// Not ctx: River works until the context it starts with ends, and ctx bounds only the start.
	if err := a.worker.Start(context.Background()); err != nil {
		return a, err
	}
	// The watch of the cluster, as cmd/worker runs it.
	wctx, stop := context.WithCancel(context.Background())
	a.stopWatch, a.watchDone = stop, make(chan struct{})
	go func() {
		defer close(a.watchDone)
		watch.Run(wctx, watch.Deps{Store: a.st, LockConn: a.pool.Config().ConnConfig.Copy(), Clusters: reg.Managed(),
			IsAncestor: jobs.GitAncestor(a.st, git, sec), CommitAuthor: jobs.GitCommitAuthor(a.st, git, sec), River: a.worker, Logger: wlog})
	}()
	return a, nil
}

// stop stops the worker and the receiver and drops the database.
func (a *app) stop() error {
	var errs []error
	if a.stopWatch != nil {
		a.stopWatch()
		<-a.watchDone
	}
	if a.worker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.worker.Stop(ctx); err != nil {
			errs = append(errs, err, a.worker.StopAndCancel(context.Background()))
		}
	}
	if a.srv != nil {
		errs = append(errs, a.srv.Close())
	}
	if a.stopHub != nil {
		a.stopHub()
	}
	if a.locks != nil {
		a.locks.Close()
	}
	if a.drop != nil {
		a.drop()
	}
	return errors.Join(errs...)
}

// logBuffer collects fluxbridge's log, for failure output, without the access log lines
// (the tests poll the API).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"message":"request"`)) {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// tail returns at most n bytes of the end of the log, from a line start.
func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
