package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Repository layouts (repositories.gitops_config.layout): where each environment's manifests go.
const (
	// LayoutDirectory keeps every environment on one branch, in <path>/<environment>.
	LayoutDirectory = "directory"
	// LayoutBranch gives each environment a branch named after it, with manifests in <path>.
	LayoutBranch = "branch"
)

// DefaultBranch is the branch a repository without one configured is written to.
const DefaultBranch = "main"

// RepoGitops is the typed view of repositories.gitops_config.
type RepoGitops struct {
	// Branch is the branch fluxbridge writes to; default "main".
	Branch string `json:"branch,omitempty"`
	// Path is the base directory of the generated manifests; "" is the repository root.
	Path string `json:"path,omitempty"`
	// Layout is LayoutDirectory (default) or LayoutBranch.
	Layout string `json:"layout,omitempty"`
}

// EnvGitops is the typed view of the keys of environments.gitops_config that say where the
// environment's manifests go. Other keys (access settings) are ignored here.
type EnvGitops struct {
	// Repository names the project's repository to write to; default its only GitOps one.
	Repository string `json:"repository,omitempty"`
	// Branch overrides the branch the repository's layout gives.
	Branch string `json:"branch,omitempty"`
	// Path overrides the directory the repository's layout gives.
	Path string `json:"path,omitempty"`
	// Namespace is the default target namespace of the environment's apps (default
	// <project>-<environment>); Namespaces are more namespaces it owns. An environment deploys
	// into these only, and no other environment of the cluster may own them.
	Namespace  string   `json:"namespace,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
	// Kustomization names the Flux Kustomization that applies the environment's path.
	Kustomization *KustomizationRef `json:"kustomization,omitempty"`
	// ReconcileOnDeploy, true by default, makes a pushed deploy ask Flux to reconcile the
	// environment's Kustomization (with its source) at once; false leaves the commit to Flux's
	// interval.
	ReconcileOnDeploy *bool `json:"reconcileOnDeploy,omitempty"`
	// AutoRollback, false by default, makes fluxbridge roll an app back by itself when a
	// console deploy of it fails in Flux (health checks not passing within the
	// Kustomization's timeout, a failed apply): a revert to the app's previous successful
	// deployment, as a person's rollback, through the environment's approval gate.
	AutoRollback bool `json:"autoRollback,omitempty"`
}

// KustomizationRef names a Flux Kustomization in the environment's cluster.
type KustomizationRef struct {
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Gitops parses the repository's gitops_config; an empty document is all defaults.
func (r *Repository) Gitops() (RepoGitops, error) {
	var c RepoGitops
	if err := decodeConfig(r.GitopsConfig, &c); err != nil {
		return c, fmt.Errorf("gitops_config of repository %s: %w", r.Name, err)
	}
	if c.Branch == "" {
		c.Branch = DefaultBranch
	}
	if c.Layout == "" {
		c.Layout = LayoutDirectory
	}
	return c, nil
}

// Gitops parses the environment's gitops_config placement keys.
func (e *Environment) Gitops() (EnvGitops, error) {
	var c EnvGitops
	if err := decodeConfig(e.GitopsConfig, &c); err != nil {
		return c, fmt.Errorf("gitops_config of environment %s: %w", e.Name, err)
	}
	return c, nil
}

func decodeConfig(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// Namespaces are the namespaces env of the project with slug owns, its default namespace
// first: gitops_config.namespace (default <project>-<environment>) and gitops_config.namespaces.
// They are not validated here.
func (e *Environment) Namespaces(projectSlug string) []string {
	c, _ := e.Gitops()
	def := c.Namespace
	if def == "" {
		def = projectSlug + "-" + e.Name
	}
	out := []string{def}
	for _, ns := range c.Namespaces {
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// ServiceAccount is the ServiceAccount the Kustomizations and HelmReleases of env of the project
// with slug impersonate: admin in env's namespaces and nothing else.
func (e *Environment) ServiceAccount(projectSlug string) string {
	return "fluxbridge-" + projectSlug + "-" + e.Name
}
