package main

import (
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
)

// clusters builds the registry of the configured clusters: one client each, none contacted
// yet.
func clusters(cfg *config.Config) (*cluster.Registry, error) {
	scheme, err := fluxscheme.New()
	if err != nil {
		return nil, err
	}
	specs := make([]cluster.Spec, len(cfg.Clusters))
	for i, c := range cfg.Clusters {
		specs[i] = cluster.Spec{Name: c.Name, Kubeconfig: c.Kubeconfig, FluxNamespace: c.FluxNamespace}
	}
	return cluster.NewRegistry(specs, scheme)
}

// secretStore opens the credential store: Kubernetes Secrets in the management cluster when
// secretsKubernetes is set, else files in secretsDir.
func secretStore(cfg *config.Config) (secrets.Store, error) {
	if ks := cfg.SecretsKubernetes; ks != nil {
		return secrets.NewKubeStore(ks.Kubeconfig, ks.Namespace)
	}
	return secrets.NewFileStore(cfg.SecretsDir)
}
