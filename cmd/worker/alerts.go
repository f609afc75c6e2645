package main

import (
	"github.com/fluxbridge/fluxbridge/internal/config"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
)

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
