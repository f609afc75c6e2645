package storetest

import (
	"context"
	"testing"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Cluster is the cluster name the seeded rows live in; the fixtures in fluxeventtest name
// the same objects.
const Cluster = "prod-eu"

// Seeded is a small but complete platform: one project with a maintainer, a production
// environment, a Git repository, and the Flux objects of the fluxeventtest fixtures.
type Seeded struct {
	User          *store.User
	Project       *store.Project
	Env           *store.Environment
	Repo          *store.Repository
	GitRepository *store.Resource // flux-system/webapp
	Kustomization *store.Resource // flux-system/webapp-production
	HelmRelease   *store.Resource // webapp/podinfo
}

// Seed inserts the Seeded rows through st on db.
func Seed(t testing.TB, st *store.Store, db store.DBTX) *Seeded {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	var s Seeded
	var err error
	s.User, err = st.CreateUser(ctx, db, store.User{Username: "alice", DisplayName: "Alice Example", Email: "alice@example.com"})
	must(err)
	s.Project, err = st.CreateProject(ctx, db, store.Project{Slug: "webapp", Name: "Web app"})
	must(err)
	must(st.AddMember(ctx, db, s.Project.ID, s.User.ID, "maintainer"))
	s.Env, err = st.CreateEnvironment(ctx, db, store.Environment{ProjectID: s.Project.ID, Name: "production", Kind: "prod", Cluster: Cluster})
	must(err)
	s.Repo, err = st.CreateRepository(ctx, db, store.NewRepository{
		ProjectID: s.Project.ID, Name: "webapp", URL: "https://git.example.com/acme/webapp.git",
		AuthType: "https", CredentialRef: "webapp-git", GitopsEnabled: true,
	})
	must(err)
	s.GitRepository, err = st.CreateResource(ctx, db, store.NewResource{
		ProjectID: s.Project.ID, RepositoryID: &s.Repo.ID, Cluster: Cluster, Kind: "GitRepository",
		Namespace: "flux-system", Name: "webapp",
	})
	must(err)
	s.Kustomization, err = st.CreateResource(ctx, db, store.NewResource{
		ProjectID: s.Project.ID, EnvironmentID: &s.Env.ID, RepositoryID: &s.Repo.ID, Cluster: Cluster,
		Kind: "Kustomization", Namespace: "flux-system", Name: "webapp-production",
	})
	must(err)
	s.HelmRelease, err = st.CreateResource(ctx, db, store.NewResource{
		ProjectID: s.Project.ID, EnvironmentID: &s.Env.ID, Cluster: Cluster, Kind: "HelmRelease",
		Namespace: "webapp", Name: "podinfo",
	})
	must(err)
	return &s
}
