package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadFileEnvAndSecrets(t *testing.T) {
	token := writeFile(t, "token", "file-token-0123456789abcdef\n")
	dbURL := writeFile(t, "db", "postgres://fb:s3cret@db:5432/fb\n")
	cfgPath := writeFile(t, "fluxbridge.yaml", `
listenAddr: 0.0.0.0:8080
logLevel: debug
shutdownTimeout: 5s
clusters:
  - name: prod-eu
    webhookTokenFile: `+token+`
    kubeconfig: in-cluster
  - name: staging
    webhookToken: inline-token-0123456789
    fluxNamespace: flux
`)
	cfg, err := config.Load(env(map[string]string{
		"FLUXBRIDGE_CONFIG": cfgPath, "DATABASE_URL_FILE": dbURL, "LISTEN_ADDR": "127.0.0.1:9999", "MIGRATE_ON_START": "false",
	}))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", cfg.ListenAddr, "env overrides the file")
	require.Equal(t, "debug", cfg.LogLevel)
	require.Equal(t, "postgres://fb:s3cret@db:5432/fb", cfg.DatabaseURL, "secret file, trailing newline trimmed")
	require.False(t, *cfg.MigrateOnStart)
	require.Equal(t, 5*time.Second, cfg.ShutdownTimeout.Duration)
	prod, ok := cfg.Cluster("prod-eu")
	require.True(t, ok)
	require.Equal(t, "file-token-0123456789abcdef", prod.WebhookToken)
	require.Equal(t, "flux-system", prod.FluxNamespace, "default namespace")
	staging, _ := cfg.Cluster("staging")
	require.Equal(t, "flux", staging.FluxNamespace)

	s := cfg.String()
	for _, secret := range []string{"s3cret", "file-token", "inline-token"} {
		require.NotContains(t, s, secret, "String() redacts secrets")
	}
	require.Contains(t, s, "prod-eu")
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{"no database", "", nil, []string{"DATABASE_URL is required"}},
		{"unknown key", "clusterz: []\n", map[string]string{"DATABASE_URL": "postgres://x"}, []string{"unknown field"}},
		{"bad cluster name and short token", "clusters:\n  - name: Prod_EU\n    webhookToken: short\n", map[string]string{"DATABASE_URL": "postgres://x"},
			[]string{`clusters[0].name "Prod_EU"`, "at least 16 bytes"}},
		{"duplicate cluster", "clusters:\n  - {name: a, webhookToken: aaaaaaaaaaaaaaaaaaaa}\n  - {name: a, webhookToken: bbbbbbbbbbbbbbbbbbbb}\n",
			map[string]string{"DATABASE_URL": "postgres://x"}, []string{"duplicate"}},
		{"token twice", "clusters:\n  - {name: a, webhookToken: aaaaaaaaaaaaaaaaaaaa, webhookTokenFile: /nonexistent}\n",
			map[string]string{"DATABASE_URL": "postgres://x"}, []string{"not both"}},
		{"bad bool", "", map[string]string{"DATABASE_URL": "postgres://x", "MIGRATE_ON_START": "maybe"}, []string{"MIGRATE_ON_START"}},
		{"bad duration", "", map[string]string{"DATABASE_URL": "postgres://x", "SHUTDOWN_TIMEOUT": "soon"}, []string{"SHUTDOWN_TIMEOUT"}},
		{"short retention", "retention:\n  fluxEvents: 5m\n", map[string]string{"DATABASE_URL": "postgres://x"}, []string{"retention.fluxEvents 5m0s"}},
		{"bad pool size", "", map[string]string{"DATABASE_URL": "postgres://x", "DATABASE_MAX_CONNS": "0"}, []string{"DATABASE_MAX_CONNS", "1 to 1000"}},
		{"bad log format", "", map[string]string{"DATABASE_URL": "postgres://x", "LOG_FORMAT": "xml"}, []string{"logFormat"}},
		{"missing secret file", "", map[string]string{"DATABASE_URL_FILE": "/nonexistent/db"}, []string{"DATABASE_URL_FILE"}},
		{"relative receiver URL", "clusters:\n  - {name: a, webhookToken: aaaaaaaaaaaaaaaaaaaa, receiverURL: fluxbridge:8080}\n",
			map[string]string{"DATABASE_URL": "postgres://x"}, []string{`cluster "a": receiverURL`}},
		{"external URL with a query", "", map[string]string{"DATABASE_URL": "postgres://x", "EXTERNAL_URL": "https://fb.example.com/?x=1"}, []string{"externalURL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range tt.env {
				e[k] = v
			}
			if tt.file != "" {
				e["FLUXBRIDGE_CONFIG"] = writeFile(t, "c.yaml", tt.file)
			}
			_, err := config.Load(env(e))
			require.Error(t, err)
			for _, w := range tt.want {
				require.True(t, strings.Contains(err.Error(), w), "%q does not contain %q", err, w)
			}
		})
	}
}

func TestReceiverURLs(t *testing.T) {
	t.Parallel()
	cfgPath := writeFile(t, "fluxbridge.yaml", `
externalURL: https://fluxbridge.example.com
clusters:
  - {name: prod-eu, webhookToken: aaaaaaaaaaaaaaaaaaaa, kubeconfig: in-cluster}
  - {name: edge, webhookToken: bbbbbbbbbbbbbbbbbbbb, kubeconfig: /k, receiverURL: "http://10.0.0.5:8080/fb"}
`)
	c, err := config.Load(env(map[string]string{"FLUXBRIDGE_CONFIG": cfgPath, "DATABASE_URL": "postgres://db/x"}))
	require.NoError(t, err)
	prod, _ := c.Cluster("prod-eu")
	require.Equal(t, "https://fluxbridge.example.com", prod.ReceiverURL, "the external URL is the default")
	edge, _ := c.Cluster("edge")
	require.Equal(t, "http://10.0.0.5:8080/fb", edge.ReceiverURL)
	require.Contains(t, c.String(), `receiverURL="http://10.0.0.5:8080/fb"`)

	c, err = config.Load(env(map[string]string{"FLUXBRIDGE_CONFIG": cfgPath, "DATABASE_URL": "postgres://db/x", "EXTERNAL_URL": "https://fb.internal"}))
	require.NoError(t, err)
	prod, _ = c.Cluster("prod-eu")
	require.Equal(t, "https://fb.internal", prod.ReceiverURL, "EXTERNAL_URL overrides the file")
}

func TestGitSettings(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://db/x"}))
	require.NoError(t, err)
	require.Equal(t, config.DefaultSecretsDir, c.SecretsDir)
	require.Equal(t, config.DefaultGitCacheDir, c.GitCacheDir)
	require.Equal(t, config.DefaultGitTimeout, c.GitTimeout.Duration)
	require.Equal(t, config.DefaultGitBotEmail, c.GitBotEmail)

	c, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://db/x", "SECRETS_DIR": "/var/lib/fb/secrets",
		"GIT_CACHE_DIR": "/cache", "GIT_BOT_NAME": "Deploy Bot", "GIT_BOT_EMAIL": "deploy@example.com", "GIT_TIMEOUT": "45s"}))
	require.NoError(t, err)
	require.Equal(t, "/var/lib/fb/secrets", c.SecretsDir)
	require.Equal(t, "Deploy Bot", c.GitBotName)
	require.Contains(t, c.String(), `secretsDir=/var/lib/fb/secrets gitCacheDir=/cache gitBot="Deploy Bot" <deploy@example.com> gitTimeout=45s`)

	for k, v := range map[string]string{"GIT_TIMEOUT": "soon", "GIT_BOT_EMAIL": "nobody"} {
		_, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://db/x", k: v}))
		require.Error(t, err, k)
	}
}

func TestRetentionDefaults(t *testing.T) {
	fe, n, h, a := config.Retention{}.Durations()
	require.Equal(t, []time.Duration{30 * 24 * time.Hour, 90 * 24 * time.Hour, 90 * 24 * time.Hour, 0}, []time.Duration{fe, n, h, a})
	fe, _, _, a = config.Retention{FluxEvents: &config.Duration{}, Audit: &config.Duration{Duration: 8760 * time.Hour}}.Durations()
	require.Zero(t, fe, "0s keeps for ever")
	require.Equal(t, 8760*time.Hour, a)
}
