package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestCommitPushEnqueuesCarriedApplies: the push of a deploy enqueues the applies its job
// carries, in the transaction that records the push. The rows hold approved settings only, so a
// resource changed since by an approved change is applied at its current version, and one that
// is still a proposal (its create waits for approvals) is not applied at all.
func TestCommitPushEnqueuesCarriedApplies(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	ctx := context.Background()
	f.startWorkers(t, 1, zerolog.Nop())
	gr, k := f.seed.GitRepository, f.seed.Kustomization
	_, err := f.st.UpdateResourceConfig(ctx, f.pool, k.ID, json.RawMessage(`{"sourceRef": {"kind": "GitRepository", "name": "webapp"}, "timeout": "2m"}`), k.RepositoryID)
	require.NoError(t, err)

	proposed, err := f.st.CreateResource(ctx, f.pool, store.NewResource{ProjectID: f.seed.Project.ID, Cluster: gr.Cluster,
		Kind: "GitRepository", Namespace: "flux-system", Name: "proposed", Config: json.RawMessage(`{"url":"https://git.example.com/x.git"}`), Proposed: true})
	require.NoError(t, err)

	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 1))
	rc, err := river.NewClient(riverpgxv5.New(f.pool), &river.Config{})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, jobs.CommitPushArgs{DeploymentID: d.ID, Apply: []jobs.ResourceVersion{
		{ResourceID: gr.ID, SpecVersion: gr.SpecVersion}, {ResourceID: k.ID, SpecVersion: k.SpecVersion},
		{ResourceID: proposed.ID, SpecVersion: proposed.SpecVersion},
	}}, nil)
	require.NoError(t, err)
	f.waitSettled(t, 30*time.Second)
	require.Equal(t, "pushed", f.deployment(t, d.ID).Status)

	applies := func(id int64) int {
		return f.countWhere(t, "river_job", fmt.Sprintf("kind = 'apply_resource' AND (args->>'resource_id')::bigint = %d", id))
	}
	require.Equal(t, 1, applies(gr.ID), "the carried version is the current one")
	require.Equal(t, 1, applies(k.ID), "changed since the deploy by an approved change: its current version is applied")
	require.Zero(t, applies(proposed.ID), "not approved: nothing applies it")
	// The Namespace file of the deploy's namespace is in the commit, created once.
	require.Contains(t, f.srv.git(t, "show", "main:apps/production/namespaces/webapp.yaml"), "name: webapp")
}
