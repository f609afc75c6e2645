package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
)

// FleetRepo is the repository the sandbox's Git server holds for the demo project.
const FleetRepo = "fleet"

// fleetReadme is the fleet repository's first commit.
const fleetReadme = `# fleet

The sandbox's fleet repository: fluxbridge writes each environment's apps under
clusters/<environment>/ and Flux applies them to the sandbox cluster. Deploy from the console,
or clone this repository and push: both directions end up in the same place.
`

// Options shape Start.
type Options struct {
	// Dir holds the sandbox's state across runs: the cluster's etcd and certificates, the Git
	// server's repositories, certificate, password and address.
	Dir string
	// KubeAssets, CRDs and FluxBin are as in ClusterOptions.
	KubeAssets, CRDs, FluxBin string
	// Logf receives the relay's diagnostics; nil drops them.
	Logf func(format string, args ...any)
}

// Sandbox is a running sandbox: the cluster and the Git server with the fleet repository.
type Sandbox struct {
	*Cluster
	Git *GitServer
}

// Start starts the Git server (creating the fleet repository on first use) and the cluster.
func Start(ctx context.Context, o Options) (s *Sandbox, err error) {
	s = &Sandbox{}
	if s.Git, err = StartGit(filepath.Join(o.Dir, "git")); err != nil {
		return nil, err
	}
	if _, err := s.Git.InitRepo(FleetRepo, map[string]string{"README.md": fleetReadme}); err != nil {
		return nil, errors.Join(fmt.Errorf("fleet repository: %w", err), s.Git.Stop())
	}
	if s.Cluster, err = StartCluster(ctx, ClusterOptions{
		KubeAssets: o.KubeAssets, CRDs: o.CRDs, FluxBin: o.FluxBin, Dir: filepath.Join(o.Dir, "cluster"), Logf: o.Logf,
	}); err != nil {
		return nil, errors.Join(err, s.Git.Stop())
	}
	return s, nil
}

// Stop stops the controllers, then the cluster and the Git server; the state stays in Dir.
func (s *Sandbox) Stop() error {
	return errors.Join(s.Cluster.Stop(), s.Git.Stop())
}
