// Package config turns the fluxbridge config file and environment variables into typed settings.
//
// The file (path in FLUXBRIDGE_CONFIG) holds what has structure: the clusters and their webhook
// tokens. Environment variables override the scalar settings, so a container can be configured
// without a file. Secrets can be given inline or, better, as files (`…File` keys, `…_FILE` vars).
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Defaults for settings that have one.
const (
	DefaultListenAddr      = "127.0.0.1:8080"
	DefaultMetricsAddr     = "127.0.0.1:9090"
	DefaultFluxNamespace   = "flux-system"
	DefaultShutdownTimeout = 20 * time.Second
	DefaultSecretsDir      = ".data/secrets"   // the file secret store of `make run`
	DefaultGitCacheDir     = ".data/git-cache" // cached clones; each process uses a subdirectory
	DefaultGitBotName      = "fluxbridge"
	DefaultGitBotEmail     = "bot@fluxbridge.local"
	DefaultGitTimeout      = 2 * time.Minute
	// DefaultReceiverConns is the receiver's pool: each webhook or API request holds one
	// connection for its transaction, and each open event stream none (one LISTEN serves all).
	DefaultReceiverConns = 25
	// DefaultSecretsNamespace holds the Secrets of the Kubernetes secret store.
	DefaultSecretsNamespace = "fluxbridge"
	minTokenLen             = 16 // bytes; shorter webhook tokens are guessable
)

// Config is the complete set of settings of the receiver and the worker.
type Config struct {
	// ListenAddr is the receiver's HTTP address.
	ListenAddr string `json:"listenAddr"`
	// MetricsAddr is where the worker serves /metrics and /healthz.
	MetricsAddr string `json:"metricsAddr"`
	// DatabaseURL is the Postgres connection string (a secret: it may hold a password).
	DatabaseURL string `json:"databaseURL"`
	// DatabaseMaxConns caps the process's database pool; 0 (default) sizes it for the process:
	// the worker one connection per River worker plus River's own, the receiver
	// DefaultReceiverConns. A pool_max_conns in DatabaseURL wins. Env: DATABASE_MAX_CONNS.
	DatabaseMaxConns int `json:"databaseMaxConns,omitempty"`
	// Retention is how long the growing tables keep their rows (the worker prunes hourly).
	Retention Retention `json:"retention"`
	// LogFormat is "json" (default) or "console".
	LogFormat string `json:"logFormat"`
	// LogLevel is a zerolog level name; default "info".
	LogLevel string `json:"logLevel"`
	// MigrateOnStart applies pending migrations when a process starts; default true.
	MigrateOnStart *bool `json:"migrateOnStart"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// Clusters are the Kubernetes clusters whose Flux reports to this fluxbridge.
	Clusters []Cluster `json:"clusters"`
	// BootstrapAdminTokenFile, when set, makes the receiver create an admin on a fresh install:
	// if no enabled admin exists, user "admin" gets the API token in this file, or a generated
	// one written to it. Env: FLUXBRIDGE_BOOTSTRAP_ADMIN_TOKEN_FILE.
	BootstrapAdminTokenFile string `json:"bootstrapAdminTokenFile,omitempty"`
	// BootstrapAdminPasswordFile, when set, gives user "admin" a console password if they have
	// none: the one in this file, or a generated one written to it. Env:
	// FLUXBRIDGE_BOOTSTRAP_ADMIN_PASSWORD_FILE.
	BootstrapAdminPasswordFile string `json:"bootstrapAdminPasswordFile,omitempty"`
	// SecureCookies marks the console's session cookie Secure even on plain-HTTP requests, for a
	// receiver behind a TLS-terminating proxy; default: when ExternalURL is https. Env:
	// SECURE_COOKIES.
	SecureCookies *bool `json:"secureCookies,omitempty"`
	// SecretsDir is the directory of the file secret store holding Git credentials (one 0600
	// file per repository); it must not be readable by others. The database keeps only
	// references into it.
	SecretsDir string `json:"secretsDir"`
	// GitCacheDir holds the cached clones of the repositories fluxbridge writes to; each
	// process (receiver, worker) uses a subdirectory of its own.
	GitCacheDir string `json:"gitCacheDir"`
	// GitBotName and GitBotEmail are the committer of every commit fluxbridge makes; the
	// author is the person who asked for it.
	GitBotName  string `json:"gitBotName"`
	GitBotEmail string `json:"gitBotEmail"`
	// GitTimeout bounds one Git operation (fetch, commit and push, with its retries).
	GitTimeout Duration `json:"gitTimeout"`
	// ExternalURL is the base URL at which clusters reach the receiver, e.g.
	// https://fluxbridge.example.com; each cluster's receiverURL overrides it. Env:
	// EXTERNAL_URL.
	ExternalURL string `json:"externalURL,omitempty"`
	// SecretsKubernetes, when set, keeps Git credentials as Kubernetes Secrets in a namespace
	// of the management cluster instead of files in SecretsDir; several receiver and worker
	// hosts can then share them.
	SecretsKubernetes *KubernetesSecrets `json:"secretsKubernetes,omitempty"`
}

// Secure tells whether session cookies are marked Secure on every request.
func (c *Config) Secure() bool {
	if c.SecureCookies != nil {
		return *c.SecureCookies
	}
	return strings.HasPrefix(c.ExternalURL, "https://")
}

// KubernetesSecrets is the Kubernetes backend of the secret store.
type KubernetesSecrets struct {
	// Kubeconfig is a kubeconfig path or "in-cluster".
	Kubeconfig string `json:"kubeconfig"`
	// Namespace holds the Secrets; default "fluxbridge".
	Namespace string `json:"namespace,omitempty"`
}

// EnvBootstrapAdminTokenFile names the variable that sets BootstrapAdminTokenFile.
const EnvBootstrapAdminTokenFile = "FLUXBRIDGE_BOOTSTRAP_ADMIN_TOKEN_FILE"

// EnvBootstrapAdminPasswordFile names the variable that sets BootstrapAdminPasswordFile.
const EnvBootstrapAdminPasswordFile = "FLUXBRIDGE_BOOTSTRAP_ADMIN_PASSWORD_FILE"

// Cluster is one Kubernetes cluster running Flux.
type Cluster struct {
	// Name identifies the cluster in URLs (/hooks/flux/{name}) and rows; a DNS label.
	Name string `json:"name"`
	// WebhookToken is the notification-controller Provider token for this cluster: the HMAC key of
	// a generic-hmac Provider, or the bearer token of a generic one.
	WebhookToken string `json:"webhookToken,omitempty"`
	// WebhookTokenFile names a file holding WebhookToken (trailing newline trimmed).
	WebhookTokenFile string `json:"webhookTokenFile,omitempty"`
	// Kubeconfig is a kubeconfig path, "in-cluster", or empty when the cluster is webhook-only.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// FluxNamespace is where Flux runs in that cluster; default flux-system.
	FluxNamespace string `json:"fluxNamespace,omitempty"`
	// ReceiverURL is the base URL at which this cluster's notification-controller reaches
	// fluxbridge's receiver; default the top-level externalURL. With a kubeconfig and a
	// receiver URL, the worker wires the cluster's alerting itself: a generic-hmac Provider
	// posting to <receiverURL>/hooks/flux/<name>, its token Secret, and Alerts covering the
	// Flux objects fluxbridge manages there (R14.1).
	ReceiverURL string `json:"receiverURL,omitempty"`
}

// Duration is a time.Duration that reads "30s" from YAML.
type Duration struct{ time.Duration }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// Retention is how long rows are kept: a duration, "0s" for ever; unset takes the default.
type Retention struct {
	FluxEvents            *Duration `json:"fluxEvents,omitempty"`            // default 30 days
	Notifications         *Duration `json:"notifications,omitempty"`         // default 90 days
	ReconciliationHistory *Duration `json:"reconciliationHistory,omitempty"` // default 90 days
	Audit                 *Duration `json:"audit,omitempty"`                 // default for ever
}

// Retention defaults.
const (
	DefaultFluxEventRetention    = 30 * 24 * time.Hour
	DefaultNotificationRetention = 90 * 24 * time.Hour
	DefaultHistoryRetention      = 90 * 24 * time.Hour
)

// Durations returns the effective retention of each table, 0 meaning for ever.
func (r Retention) Durations() (fluxEvents, notifications, history, audit time.Duration) {
	get := func(d *Duration, def time.Duration) time.Duration {
		if d == nil {
			return def
		}
		return d.Duration
	}
	return get(r.FluxEvents, DefaultFluxEventRetention), get(r.Notifications, DefaultNotificationRetention),
		get(r.ReconciliationHistory, DefaultHistoryRetention), get(r.Audit, 0)
}

// Load reads the config file named by FLUXBRIDGE_CONFIG (if set), applies environment overrides
// and defaults, resolves `…File` secrets and validates the result.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{}
	if path := getenv("FLUXBRIDGE_CONFIG"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, c); err != nil {
			return nil, fmt.Errorf("parse config %s: %w", path, err)
		}
	}
	if err := c.applyEnv(getenv); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.resolveFiles(); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) applyEnv(getenv func(string) string) error {
	set := func(dst *string, key string) error {
		if v := getenv(key); v != "" {
			*dst = v
		}
		if f := getenv(key + "_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("%s_FILE: %w", key, err)
			}
			*dst = strings.TrimRight(string(b), "\r\n")
		}
		return nil
	}
	for key, dst := range map[string]*string{
		"LISTEN_ADDR": &c.ListenAddr, "METRICS_ADDR": &c.MetricsAddr, "DATABASE_URL": &c.DatabaseURL,
		"LOG_FORMAT": &c.LogFormat, "LOG_LEVEL": &c.LogLevel,
		"SECRETS_DIR": &c.SecretsDir, "GIT_CACHE_DIR": &c.GitCacheDir, "GIT_BOT_NAME": &c.GitBotName, "GIT_BOT_EMAIL": &c.GitBotEmail,
		"EXTERNAL_URL": &c.ExternalURL,
	} {
		if err := set(dst, key); err != nil {
			return err
		}
	}
	if v := getenv(EnvBootstrapAdminTokenFile); v != "" {
		c.BootstrapAdminTokenFile = v
	}
	if v := getenv(EnvBootstrapAdminPasswordFile); v != "" {
		c.BootstrapAdminPasswordFile = v
	}
	if v := getenv("SECURE_COOKIES"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SECURE_COOKIES=%q: want true or false", v)
		}
		c.SecureCookies = &b
	}
	if v := getenv("DATABASE_MAX_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("DATABASE_MAX_CONNS=%q: want a number of connections from 1 to 1000", v)
		}
		c.DatabaseMaxConns = n
	}
	if v := getenv("MIGRATE_ON_START"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("MIGRATE_ON_START=%q: want true or false", v)
		}
		c.MigrateOnStart = &b
	}
	if v := getenv("SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SHUTDOWN_TIMEOUT=%q: %w", v, err)
		}
		c.ShutdownTimeout.Duration = d
	}
	if v := getenv("GIT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("GIT_TIMEOUT=%q: %w", v, err)
		}
		c.GitTimeout.Duration = d
	}
	return nil
}

func (c *Config) applyDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.MigrateOnStart == nil {
		t := true
		c.MigrateOnStart = &t
	}
	if c.ShutdownTimeout.Duration == 0 {
		c.ShutdownTimeout.Duration = DefaultShutdownTimeout
	}
	for dst, def := range map[*string]string{
		&c.SecretsDir: DefaultSecretsDir, &c.GitCacheDir: DefaultGitCacheDir,
		&c.GitBotName: DefaultGitBotName, &c.GitBotEmail: DefaultGitBotEmail,
	} {
		if *dst == "" {
			*dst = def
		}
	}
	if c.GitTimeout.Duration == 0 {
		c.GitTimeout.Duration = DefaultGitTimeout
	}
	for i := range c.Clusters {
		if c.Clusters[i].FluxNamespace == "" {
			c.Clusters[i].FluxNamespace = DefaultFluxNamespace
		}
		if c.Clusters[i].ReceiverURL == "" {
			c.Clusters[i].ReceiverURL = c.ExternalURL
		}
	}
	if c.SecretsKubernetes != nil && c.SecretsKubernetes.Namespace == "" {
		c.SecretsKubernetes.Namespace = DefaultSecretsNamespace
	}
}

func (c *Config) resolveFiles() error {
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.WebhookTokenFile == "" {
			continue
		}
		if cl.WebhookToken != "" {
			return fmt.Errorf("cluster %q: set webhookToken or webhookTokenFile, not both", cl.Name)
		}
		b, err := os.ReadFile(cl.WebhookTokenFile)
		if err != nil {
			return fmt.Errorf("cluster %q: webhookTokenFile: %w", cl.Name, err)
		}
		cl.WebhookToken = strings.TrimRight(string(b), "\r\n")
	}
	return nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate reports every problem in the settings at once.
func (c *Config) Validate() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is required (or databaseURL in the config file)"))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("logFormat %q: want json or console", c.LogFormat))
	}
	if c.GitTimeout.Duration < time.Second {
		errs = append(errs, fmt.Errorf("gitTimeout %s: want at least 1s", c.GitTimeout.Duration))
	}
	if !strings.Contains(c.GitBotEmail, "@") {
		errs = append(errs, fmt.Errorf("gitBotEmail %q: want an email address", c.GitBotEmail))
	}
	for name, d := range map[string]*Duration{"fluxEvents": c.Retention.FluxEvents, "notifications": c.Retention.Notifications,
		"reconciliationHistory": c.Retention.ReconciliationHistory, "audit": c.Retention.Audit} {
		if d != nil && d.Duration != 0 && d.Duration < time.Hour {
			errs = append(errs, fmt.Errorf("retention.%s %s: want 0s (keep for ever) or at least 1h", name, d.Duration))
		}
	}
	seen := map[string]bool{}
	for i, cl := range c.Clusters {
		switch {
		case !dnsLabel.MatchString(cl.Name):
			errs = append(errs, fmt.Errorf("clusters[%d].name %q: want a DNS label (lowercase letters, digits, '-')", i, cl.Name))
		case seen[cl.Name]:
			errs = append(errs, fmt.Errorf("clusters[%d].name %q: duplicate", i, cl.Name))
		}
		seen[cl.Name] = true
		if cl.FluxNamespace != "" && !dnsLabel.MatchString(cl.FluxNamespace) {
			errs = append(errs, fmt.Errorf("cluster %q: fluxNamespace %q: want a DNS label", cl.Name, cl.FluxNamespace))
		}
		if len(cl.WebhookToken) < minTokenLen {
			errs = append(errs, fmt.Errorf("cluster %q: webhook token must be at least %d bytes", cl.Name, minTokenLen))
		}
		if cl.ReceiverURL != "" && !baseURL(cl.ReceiverURL) {
			errs = append(errs, fmt.Errorf("cluster %q: receiverURL %q: want an absolute http(s) URL without query", cl.Name, cl.ReceiverURL))
		}
	}
	if c.ExternalURL != "" && !baseURL(c.ExternalURL) {
		errs = append(errs, fmt.Errorf("externalURL %q: want an absolute http(s) URL without query", c.ExternalURL))
	}
	if ks := c.SecretsKubernetes; ks != nil {
		if ks.Kubeconfig == "" {
			errs = append(errs, errors.New("secretsKubernetes.kubeconfig is required (a path or in-cluster)"))
		}
		if !dnsLabel.MatchString(ks.Namespace) {
			errs = append(errs, fmt.Errorf("secretsKubernetes.namespace %q: want a DNS label", ks.Namespace))
		}
	}
	return errors.Join(errs...)
}

// Cluster returns the named cluster.
func (c *Config) Cluster(name string) (Cluster, bool) {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl, true
		}
	}
	return Cluster{}, false
}

// String prints the settings with every secret redacted, for the startup log.
func (c *Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listenAddr=%s metricsAddr=%s databaseURL=%s logFormat=%s logLevel=%s migrateOnStart=%t clusters=[",
		c.ListenAddr, c.MetricsAddr, redactURL(c.DatabaseURL), c.LogFormat, c.LogLevel, *c.MigrateOnStart)
	for i, cl := range c.Clusters {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s(token=[redacted] kubeconfig=%q ns=%s receiverURL=%q)", cl.Name, cl.Kubeconfig, cl.FluxNamespace, cl.ReceiverURL)
	}
	b.WriteString("]")
	if c.BootstrapAdminTokenFile != "" {
		fmt.Fprintf(&b, " bootstrapAdminTokenFile=%s", c.BootstrapAdminTokenFile)
	}
	fmt.Fprintf(&b, " secretsDir=%s gitCacheDir=%s gitBot=%q <%s> gitTimeout=%s", c.SecretsDir, c.GitCacheDir, c.GitBotName, c.GitBotEmail, c.GitTimeout.Duration)
	return b.String()
}

// baseURL tells whether s is an absolute http(s) URL fit to append a path to.
func baseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

var urlPassword = regexp.MustCompile(`(://[^:/@]*:)[^@]*@`)

func redactURL(u string) string {
	u = urlPassword.ReplaceAllString(u, "${1}[redacted]@")
	return regexp.MustCompile(`(?i)(password=)[^&\s]*`).ReplaceAllString(u, "${1}[redacted]")
}
