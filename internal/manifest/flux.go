package manifest

// FluxDefaults are the settings fluxbridge gives the Flux objects a first deploy creates for an
// environment that has none: the GitRepository reading the environment's branch and the
// Kustomization applying its directory. They are in Flux's spelling (durations as Flux writes
// them), ready for a resource's config.
type FluxDefaults struct {
	// GitInterval is how often the GitRepository fetches the branch. fluxbridge asks Flux to
	// fetch a pushed deploy at once; the interval is what a developer's own push waits for.
	GitInterval string
	// Interval is how often the Kustomization re-applies the directory even without a new
	// commit, undoing drift.
	Interval string
	// RetryInterval is how soon Flux retries a failed apply.
	RetryInterval string
	// Timeout bounds one apply, health checks included: a rollout has time to finish (a
	// Deployment's progress deadline is ten minutes; Flux reports failure well before).
	Timeout string
	// Wait makes Flux health-check every object it applies (Deployments rolled out, Jobs
	// complete) before it reports Ready: the health check of every app in the directory.
	Wait bool
	// Prune deletes objects removed from Git, so deleting an app's directory undeploys it.
	Prune bool
}

// ProposedFlux returns the defaults fluxbridge proposes for every template.
func ProposedFlux() FluxDefaults {
	return FluxDefaults{GitInterval: "1m", Interval: "10m", RetryInterval: "1m", Timeout: "5m", Wait: true, Prune: true}
}
