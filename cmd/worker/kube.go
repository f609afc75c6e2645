package main

import (
	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
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

// alertTargets are how each cluster with a kubeconfig and a receiver URL reaches fluxbridge:
// the worker wires those clusters' alerting (Provider, token Secret, Alerts).
func alertTargets(cfg *config.Config) map[string]jobs.AlertTarget {
	out := map[string]jobs.AlertTarget{}
	for _, c := range cfg.Clusters {
		if c.Kubeconfig != "" && c.ReceiverURL != "" {
			out[c.Name] = jobs.AlertTarget{ReceiverURL: c.ReceiverURL, Token: c.WebhookToken}
		}
	}
	return out
}

// secretStore opens the credential store: Kubernetes Secrets in the management cluster when
// secretsKubernetes is set, else files in secretsDir.
func secretStore(cfg *config.Config) (secrets.Store, error) {
	if ks := cfg.SecretsKubernetes; ks != nil {
		return secrets.NewKubeStore(ks.Kubeconfig, ks.Namespace)
	}
	return secrets.NewFileStore(cfg.SecretsDir)
}
