// Package boot is the start-up both fluxbridge processes share: settings, the root logger, the
// database (migrated when configured), the credential store and the cluster registry. It lives
// under cmd/ because it is the only place besides the mains that reads internal/config.
package boot

import (
	"context"
	"path/filepath"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/logging"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/migrations"
)

// Process is what a started process has: its settings, logger and database pool.
type Process struct {
	Config *config.Config
	Log    zerolog.Logger
	Pool   *pgxpool.Pool
}

// Start loads the settings, builds the logger of service svc, opens the database and, unless
// migrate is false or the settings say otherwise, applies pending migrations. The caller closes
// Pool.
func Start(ctx context.Context, getenv func(string) string, svc string, migrate bool) (*Process, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	log, err := logging.New(cfg.LogFormat, cfg.LogLevel, svc)
	if err != nil {
		return nil, err
	}
	log.Info().Str("config", cfg.String()).Msg("starting")
	// The watch's informers and the kube clients log through controller-runtime: into ours.
	crlog.SetLogger(logr.FromSlogHandler(logging.Slog(log.With().Str("component", "controller-runtime").Logger()).Handler()))
	pool, err := store.Open(ctx, cfg.DatabaseURL, PoolSize(cfg, svc))
	if err != nil {
		return nil, err
	}
	if migrate && *cfg.MigrateOnStart {
		if err := Migrate(ctx, log, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return &Process{Config: cfg, Log: log, Pool: pool}, nil
}

// PoolSize is the database pool of service svc: the configured cap, else the worker's River
// workers plus River's own connections, else the receiver's default.
func PoolSize(cfg *config.Config, svc string) int {
	switch {
	case cfg.DatabaseMaxConns > 0:
		return cfg.DatabaseMaxConns
	case svc == "worker":
		return jobs.PoolSize()
	}
	return config.DefaultReceiverConns
}

// Migrate applies pending migrations and logs what it applied.
func Migrate(ctx context.Context, log zerolog.Logger, pool *pgxpool.Pool) error {
	res, err := migrations.Up(ctx, pool)
	if err != nil {
		return err
	}
	log.Info().Strs("goose", res.Goose).Ints("river", res.River).Msg("migrated")
	return nil
}

// Clusters builds the registry of the configured clusters: one client each, none contacted yet.
func (p *Process) Clusters() (*cluster.Registry, error) {
	scheme, err := fluxscheme.New()
	if err != nil {
		return nil, err
	}
	specs := make([]cluster.Spec, len(p.Config.Clusters))
	for i, c := range p.Config.Clusters {
		specs[i] = cluster.Spec{Name: c.Name, Kubeconfig: c.Kubeconfig, FluxNamespace: c.FluxNamespace}
	}
	return cluster.NewRegistry(specs, scheme)
}

// Secrets opens the credential store: Kubernetes Secrets in the management cluster when
// secretsKubernetes is set, else files in secretsDir.
func (p *Process) Secrets() (secrets.Store, error) {
	if ks := p.Config.SecretsKubernetes; ks != nil {
		return secrets.NewKubeStore(ks.Kubeconfig, ks.Namespace)
	}
	return secrets.NewFileStore(p.Config.SecretsDir)
}

// Git returns the process's Git writer. Each process has a clone cache of its own under
// gitCacheDir, named after svc: a cache directory belongs to one Writer.
func (p *Process) Git(svc string) *gitops.Writer {
	return gitops.NewWriter(filepath.Join(p.Config.GitCacheDir, svc), gitops.WithTimeout(p.Config.GitTimeout.Duration))
}

// Committer is the identity fluxbridge commits as.
func (p *Process) Committer() gitops.Signature {
	return gitops.Signature{Name: p.Config.GitBotName, Email: p.Config.GitBotEmail}
}
