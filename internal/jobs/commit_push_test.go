package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/gittest"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// bot is the committer of the tests' commits.
var bot = gitops.Signature{Name: "fluxbridge", Email: "bot@fluxbridge.test"}

// pushFixture is a seeded database whose repository points at a live Git server, and a
// commit_push worker with its own cache, secret store and push locks.
type pushFixture struct {
	*testBundle
	srv     *gitServer
	secrets *secrets.FileStore
	locks   *store.PushLocks
	push    *jobs.CommitPushWorker
}

func newPushFixture(t *testing.T, srv *gitServer) *pushFixture {
	t.Helper()
	t.Parallel()
	return newPushFixtureTB(t, srv)
}

// newPushFixtureTB is newPushFixture for benchmarks, which cannot run in parallel.
func newPushFixtureTB(t testing.TB, srv *gitServer) *pushFixture {
	t.Helper()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	b := &testBundle{pool: pool, st: st, seed: storetest.Seed(t, st, pool), worker: &jobs.FluxEventWorker{Store: st}}
	ctx := context.Background()
	sec, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	authType, ref := "none", ""
	if srv.creds != nil {
		authType, ref = "https", secrets.NewRef("repo-webapp")
		if strings.HasPrefix(srv.url, "ssh://") {
			authType = "ssh"
		}
		require.NoError(t, sec.Put(ctx, ref, srv.creds))
	}
	_, err = b.pool.Exec(ctx, `UPDATE repositories SET url = $2, auth_type = $3, credential_ref = $4 WHERE id = $1`,
		b.seed.Repo.ID, srv.url, authType, ref)
	require.NoError(t, err)
	locks, err := store.NewPushLocks(ctx, b.pool, jobs.GitWorkers)
	require.NoError(t, err)
	t.Cleanup(locks.Close)
	return &pushFixture{testBundle: b, srv: srv, secrets: sec, locks: locks, push: &jobs.CommitPushWorker{
		Store: b.st, Git: gitops.NewWriter(t.TempDir()), Secrets: sec, Locks: locks, Committer: bot,
	}}
}

// apiForm is the form most tests deploy: the api microservice at tag.
func apiForm(tag string, replicas int32) manifest.Form {
	return manifest.Form{App: "api", Image: "ghcr.io/acme/api", Tag: tag, Replicas: &replicas,
		Ports: []manifest.Port{{ContainerPort: 8080}}}
}

// deploy inserts a pending gitops-ui deployment of form to apps/production/<app> on main.
func (f *pushFixture) deploy(t testing.TB, kind string, form manifest.Form) *store.Deployment {
	t.Helper()
	ctx := context.Background()
	d, err := f.st.CreateDeployment(ctx, f.pool, store.NewDeployment{
		ProjectID: f.seed.Project.ID, EnvironmentID: f.seed.Env.ID, GitopsResourceID: &f.seed.Kustomization.ID,
		Method: store.MethodGitopsUI, App: form.App, RequestedBy: &f.seed.User.ID,
	})
	require.NoError(t, err)
	raw, err := json.Marshal(form)
	require.NoError(t, err)
	_, err = f.st.CreateDeploymentSpec(ctx, f.pool, store.DeploymentSpec{
		DeploymentID: d.ID, RepositoryID: f.seed.Repo.ID, Branch: "main", Path: "apps/production/" + form.App,
		Namespace: "webapp", Kind: kind, Form: raw,
	})
	require.NoError(t, err)
	return d
}

// work runs the worker once on deployment id, as River's attempt-th try.
func (f *pushFixture) work(t *testing.T, id int64, attempt int) error {
	t.Helper()
	job := &river.Job[jobs.CommitPushArgs]{
		JobRow: &rivertype.JobRow{ID: id + 1000, Attempt: attempt, MaxAttempts: 8, Kind: "commit_push"},
		Args:   jobs.CommitPushArgs{DeploymentID: id},
	}
	return f.push.Work(context.Background(), job)
}

func (f *pushFixture) deployment(t testing.TB, id int64) *store.Deployment {
	t.Helper()
	d, err := f.st.DeploymentByID(context.Background(), f.pool, id)
	require.NoError(t, err)
	return d
}

// commits counts the commits on main.
func (f *pushFixture) commits(t *testing.T) int {
	t.Helper()
	var n int
	_, err := fmt.Sscan(f.srv.git(t, "rev-list", "--count", "main"), &n)
	require.NoError(t, err)
	return n
}

func requireCancelled(t *testing.T, err error) {
	t.Helper()
	var c *river.JobCancelError
	require.True(t, errors.As(err, &c), "want river.JobCancel, got %v", err)
}

func TestCommitPushFriendlyCommitOverHTTPS(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, true))
	first := f.deploy(t, manifest.KindMicroservice, apiForm("1.4.2", 2))
	require.NoError(t, f.work(t, first.ID, 1))
	d1 := f.deployment(t, first.ID)
	require.Equal(t, store.DeployPushed, d1.Status)
	require.Equal(t, f.srv.git(t, "rev-parse", "main"), d1.CommitSHA)
	require.Equal(t, "deploy api to production: new microservice, image ghcr.io/acme/api:1.4.2, replicas 2", f.srv.git(t, "log", "-1", "--format=%s"))

	second := f.deploy(t, manifest.KindMicroservice, apiForm("1.4.3", 3))
	require.NoError(t, f.work(t, second.ID, 1))
	d2 := f.deployment(t, second.ID)
	require.Equal(t, 3, f.commits(t), "the seed commit and one per deploy")

	// What a person sees in git log and git show.
	require.Equal(t, "deploy api to production: image 1.4.2 → 1.4.3, replicas 2 → 3", f.srv.git(t, "log", "-1", "--format=%s"))
	require.Equal(t, "Alice Example <alice@example.com>", f.srv.git(t, "log", "-1", "--format=%an <%ae>"))
	require.Equal(t, "fluxbridge <bot@fluxbridge.test>", f.srv.git(t, "log", "-1", "--format=%cn <%ce>"))
	trailers := f.srv.git(t, "log", "-1", "--format=%(trailers:only,unfold)")
	require.Equal(t, fmt.Sprintf("Deployment-Id: %d\nRequested-By: Alice Example <alice@example.com>\nEnvironment: production", d2.ID), trailers)
	body := f.srv.git(t, "log", "-1", "--format=%b")
	require.Contains(t, body, "Deployed from the fluxbridge UI by Alice Example (alice).")
	require.Contains(t, body, "- image 1.4.2 → 1.4.3\n- replicas 2 → 3")
	require.Contains(t, body, "Directory: apps/production/api/")
	show := f.srv.git(t, "show", "--stat", "--format=", "main")
	require.Contains(t, show, "apps/production/api/deployment.yaml")
	require.Contains(t, show, "1 file changed", "only the deployment changed: %s", show)
	require.Equal(t, d2.CommitSHA, f.srv.git(t, "rev-parse", "main"))
	require.Equal(t, "Alice Example <alice@example.com>", d2.CommitAuthor)
	require.True(t, strings.HasPrefix(d2.CommitMessage, "deploy api to production: image 1.4.2 → 1.4.3"))
	require.Empty(t, f.srv.git(t, "rev-list", "--merges", "main"), "history is linear")

	// The files are what the form renders, with the fluxbridge marker.
	dep := f.srv.git(t, "show", "main:apps/production/api/deployment.yaml")
	require.True(t, strings.HasPrefix(dep, "# Managed by fluxbridge"))
	require.Contains(t, dep, "image: ghcr.io/acme/api:1.4.3")
	require.Contains(t, dep, "replicas: 3")
	require.Contains(t, f.srv.git(t, "show", "main:apps/production/api/kustomization.yaml"), "- deployment.yaml\n- service.yaml")

	// Audited by the system actor, in the transaction that recorded the push.
	require.Equal(t, 2, f.countWhere(t, "audit_logs", "action = 'deployment.pushed'"))
}

func TestCommitPushRunTwiceMakesOneCommit(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, d.ID, 1))
	require.NoError(t, f.work(t, d.ID, 2), "River delivers at least once")
	require.Equal(t, 2, f.commits(t))

	// The push landed but recording it did not (the worker died in between): the next run
	// finds nothing to commit and records the head.
	_, err := f.pool.Exec(context.Background(), `UPDATE deployments SET status = 'pending', commit_sha = '' WHERE id = $1`, d.ID)
	require.NoError(t, err)
	require.NoError(t, f.work(t, d.ID, 3))
	require.Equal(t, 2, f.commits(t))
	got := f.deployment(t, d.ID)
	require.Equal(t, store.DeployPushed, got.Status)
	require.Equal(t, f.srv.git(t, "rev-parse", "main"), got.CommitSHA)

	// The same form deployed again: no commit, the deployment points at the head.
	again := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, again.ID, 1))
	require.Equal(t, 2, f.commits(t))
	require.Contains(t, f.deployment(t, again.ID).Message, "nothing to commit")
}

func TestCommitPushWrongPasswordFailsFast(t *testing.T) {
	srv := newGitServer(t, true)
	srv.creds = secrets.Data{"username": []byte(gitUser), "password": []byte("wrong-password-4242"), "ca.crt": srv.creds["ca.crt"]}
	f := newPushFixture(t, srv)
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	start := time.Now()
	err := f.work(t, d.ID, 1)
	requireCancelled(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
	require.LessOrEqual(t, srv.requests.Load(), int64(2), "no retries after a 401")
	got := f.deployment(t, d.ID)
	require.Equal(t, store.DeployFailed, got.Status)
	require.Contains(t, got.Message, "refused the repository's credentials")
	require.NotContains(t, got.Message, "wrong-password-4242")
	require.NotContains(t, err.Error(), "wrong-password-4242")
	require.Equal(t, 1, f.commits(t))
}

func TestCommitPushOverSSH(t *testing.T) {
	srv := newSSHServer(t)
	f := newPushFixture(t, srv)
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, d.ID, 1))
	require.Equal(t, store.DeployPushed, f.deployment(t, d.ID).Status)
	require.Equal(t, f.deployment(t, d.ID).CommitSHA, srv.git(t, "rev-parse", "main"))

	// known_hosts that does not hold the server's key: failed at once, job cancelled.
	other := gittest.StrangerKnownHosts(t, srv.GitServer)
	data, err := f.secrets.Get(context.Background(), f.repoRef(t))
	require.NoError(t, err)
	data["known_hosts"] = other
	require.NoError(t, f.secrets.Put(context.Background(), f.repoRef(t), data))
	bad := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.1", 2))
	start := time.Now()
	requireCancelled(t, f.work(t, bad.ID, 1))
	require.Less(t, time.Since(start), 3*time.Second)
	got := f.deployment(t, bad.ID)
	require.Equal(t, store.DeployFailed, got.Status)
	require.Contains(t, got.Message, "known_hosts")
	require.Equal(t, 2, f.commits(t))
}

func TestCommitPushRebasesOverRacingCLIPush(t *testing.T) {
	// Between our fetch (the advertisement) and our push, someone pushes with the git CLI.
	var once sync.Once
	var srv *gitServer
	work := t.TempDir()
	race := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/git-receive-pack") {
				once.Do(func() {
					gitCLI(t, work, "clone", "-q", srv.bare(), "clone")
					clone := filepath.Join(work, "clone")
					require.NoError(t, os.WriteFile(filepath.Join(clone, "NOTES.md"), []byte("hand-written\n"), 0o644))
					gitCLI(t, clone, "add", "NOTES.md")
					gitCLI(t, clone, "commit", "-q", "-m", "notes from a human")
					gitCLI(t, clone, "push", "-q", "origin", "main")
				})
			}
			h.ServeHTTP(w, r)
		})
	}
	srv = newGitServer(t, false, race)
	f := newPushFixture(t, srv)
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, d.ID, 1))
	require.Equal(t, "deploy api to production: new microservice, image ghcr.io/acme/api:1.0.0, replicas 2\nnotes from a human\ninitial",
		srv.git(t, "log", "--format=%s", "main"), "our commit was re-applied on top of the racing one")
	require.Equal(t, "hand-written", srv.git(t, "show", "main:NOTES.md"), "nothing lost")
	require.Empty(t, srv.git(t, "rev-list", "--merges", "main"))
	require.Equal(t, srv.git(t, "rev-parse", "main"), f.deployment(t, d.ID).CommitSHA)
}

func TestCommitPushNeverOverwritesHandEdits(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, d.ID, 1))

	clone := filepath.Join(t.TempDir(), "clone")
	gitCLI(t, t.TempDir(), "clone", "-q", f.srv.bare(), clone)
	p := filepath.Join(clone, "apps/production/api/deployment.yaml")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	edited := strings.Replace(string(b), "replicas: 2", "replicas: 7", 1)
	require.NoError(t, os.WriteFile(p, []byte(edited), 0o644))
	gitCLI(t, clone, "commit", "-q", "-am", "scale by hand")
	gitCLI(t, clone, "push", "-q", "origin", "main")

	next := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.1", 2))
	requireCancelled(t, f.work(t, next.ID, 1))
	got := f.deployment(t, next.ID)
	require.Equal(t, store.DeployFailed, got.Status)
	require.Contains(t, got.Message, "apps/production/api/deployment.yaml")
	require.Contains(t, got.Message, "edited by hand")
	require.Equal(t, edited, f.srv.git(t, "show", "main:apps/production/api/deployment.yaml")+"\n", "the hand edit stays")
}

func TestCommitPushKindChangeDeletesStaleFiles(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	web := apiForm("1.0.0", 2)
	web.Ingress = &manifest.Ingress{Host: "api.example.com"}
	d := f.deploy(t, manifest.KindWebApp, web)
	require.NoError(t, f.work(t, d.ID, 1))
	require.Contains(t, f.srv.git(t, "ls-tree", "--name-only", "main", "apps/production/api/"), "ingress.yaml")

	d2 := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, d2.ID, 1))
	require.Equal(t, "apps/production/api/deployment.yaml\napps/production/api/kustomization.yaml\napps/production/api/service.yaml",
		f.srv.git(t, "ls-tree", "--name-only", "main", "apps/production/api/"))
	require.Equal(t, "deploy api to production: template web-app → microservice", f.srv.git(t, "log", "-1", "--format=%s"))
}

func TestFluxEventSettlesPushedDeploymentsByAncestry(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	f.worker.IsAncestor = jobs.GitAncestor(f.st, f.push.Git, f.secrets)
	a := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	require.NoError(t, f.work(t, a.ID, 1))
	b := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.1", 2))
	require.NoError(t, f.work(t, b.ID, 1))
	head := f.srv.git(t, "rev-parse", "main")

	// Flux skipped a's commit and applied b's, a descendant: both are done.
	f.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata.revision": "main@sha1:" + head}))
	for _, id := range []int64{a.ID, b.ID} {
		got := f.deployment(t, id)
		require.Equal(t, store.DeploySucceeded, got.Status, "deployment %d", id)
		require.Equal(t, "main@sha1:"+head, got.Revision)
	}
	require.Zero(t, f.countWhere(t, "deployments", "deployment_method = 'gitops-git'"))

	// Redeploying the applied form: nothing to commit and already applied, so succeeded at once.
	c := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.1", 2))
	require.NoError(t, f.work(t, c.ID, 1))
	require.Equal(t, store.DeploySucceeded, f.deployment(t, c.ID).Status)
}

func TestCommitPushMissingCredentialsFailsClearly(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, true))
	require.NoError(t, f.secrets.Delete(context.Background(), f.repoRef(t)))
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	requireCancelled(t, f.work(t, d.ID, 1))
	require.Contains(t, f.deployment(t, d.ID).Message, "credentials missing from the secret store")
}

func TestCommitPushGivesUpAfterTheLastAttempt(t *testing.T) {
	srv := newGitServer(t, false)
	f := newPushFixture(t, srv)
	srv.StopHTTP() // the Git host is down: a network error, retried
	d := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	err := f.work(t, d.ID, 1)
	require.Error(t, err)
	var c *river.JobCancelError
	require.False(t, errors.As(err, &c), "network errors are retried")
	require.Equal(t, store.DeployPending, f.deployment(t, d.ID).Status)
	require.Error(t, f.work(t, d.ID, 8))
	got := f.deployment(t, d.ID)
	require.Equal(t, store.DeployFailed, got.Status)
	require.Contains(t, got.Message, "gave up after 8 attempts")
}

func (f *pushFixture) repoRef(t *testing.T) string {
	t.Helper()
	r, err := f.st.RepositoryByID(context.Background(), f.pool, f.seed.Repo.ID)
	require.NoError(t, err)
	return r.CredentialRef
}

func (b *testBundle) countWhere(t *testing.T, table, where string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE "+where).Scan(&n))
	return n
}

func TestCommitPushOlderRequestNeverOverwritesNewer(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	older := f.deploy(t, manifest.KindMicroservice, apiForm("1.0.0", 2))
	newer := f.deploy(t, manifest.KindMicroservice, apiForm("2.0.0", 2))
	// River ran the newer request's job first.
	require.NoError(t, f.work(t, newer.ID, 1))
	require.NoError(t, f.work(t, older.ID, 1))
	got := f.deployment(t, older.ID)
	require.Equal(t, store.DeployCancelled, got.Status)
	require.Contains(t, got.Message, fmt.Sprintf("superseded by deployment %d", newer.ID))
	require.Equal(t, 2, f.commits(t))
	require.Contains(t, f.srv.git(t, "show", "main:apps/production/api/deployment.yaml"), "ghcr.io/acme/api:2.0.0")
}

// TestCommitPushRecordsItsOwnCommitAfterACrash: an attempt pushes and dies before recording
// (simulated by undoing the record); meanwhile another deploy moves the branch. The retry finds
// its own commit by its Deployment-Id trailer and records exactly that commit, its message and
// author, and pushes nothing more.
func TestCommitPushRecordsItsOwnCommitAfterACrash(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, true))
	ctx := context.Background()
	a := f.deploy(t, manifest.KindMicroservice, apiForm("1.4.2", 2))
	require.NoError(t, f.work(t, a.ID, 1))
	pushed := f.deployment(t, a.ID)
	_, err := f.pool.Exec(ctx, `UPDATE deployments SET status = 'pending', commit_sha = '', commit_message = '', commit_author = '', message = '' WHERE id = $1`, a.ID)
	require.NoError(t, err)

	web := apiForm("2.0.0", 1)
	web.App, web.Image = "web", "ghcr.io/acme/web"
	b := f.deploy(t, manifest.KindMicroservice, web)
	require.NoError(t, f.work(t, b.ID, 1))
	head := f.srv.git(t, "rev-parse", "main")
	require.NotEqual(t, pushed.CommitSHA, head)
	commits := f.commits(t)

	require.NoError(t, f.work(t, a.ID, 2))
	got := f.deployment(t, a.ID)
	require.Equal(t, store.DeployPushed, got.Status)
	require.Equal(t, pushed.CommitSHA, got.CommitSHA, "its own commit, not the branch head")
	require.Equal(t, pushed.CommitAuthor, got.CommitAuthor)
	require.Equal(t, f.srv.git(t, "log", "-1", "--format=%B", pushed.CommitSHA), got.CommitMessage)
	require.Contains(t, got.Message, "found after an interrupted attempt")
	require.Equal(t, commits, f.commits(t), "nothing pushed twice")
}

// TestGitDeploymentRecordsItsAuthor: a change pushed straight to Git is recorded with its
// commit's author, read from Git before the event's transaction; a Git server that cannot
// be read leaves the author empty and records the deployment all the same.
func TestGitDeploymentRecordsItsAuthor(t *testing.T) {
	f := newPushFixture(t, newGitServer(t, false))
	f.worker.CommitAuthor = jobs.GitCommitAuthor(f.st, f.push.Git, f.secrets)
	work := t.TempDir()
	gitCLI(t, work, "clone", "-q", f.srv.url, ".")
	require.NoError(t, os.WriteFile(filepath.Join(work, "hand.yaml"), []byte("kind: ConfigMap\n"), 0o644))
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "-q", "--author=Dev One <dev@example.com>", "-m", "by hand")
	gitCLI(t, work, "push", "-q", "origin", "HEAD:main")
	head := f.srv.git(t, "rev-parse", "main")

	f.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata.revision": "main@sha1:" + head}))
	ds := f.deployments(t)
	require.Len(t, ds, 1)
	require.Equal(t, store.MethodGitopsGit, ds[0].DeploymentMethod)
	require.Equal(t, "Dev One <dev@example.com>", ds[0].CommitAuthor)

	// A commit Git does not have (a force-push since): recorded without an author.
	f.deliver(t, fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"timestamp": "2026-11-26T09:34:04Z", "metadata.revision": "main@sha1:" + strings.Repeat("e", 40)}))
	ds = f.deployments(t)
	require.Len(t, ds, 2)
	require.Empty(t, ds[0].CommitAuthor)
}
