package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fluxcd/pkg/gittestserver"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/gittest"
)

// TestSSHThroughFlux: a fleet repository connected over SSH (R2.3), with a passphrase-protected
// key and the server's known_hosts. fluxbridge pushes a UI deploy over SSH, the apply job
// writes the GitRepository's Secret in Flux's keys (identity, identity.pub, known_hosts, and
// the passphrase as password), the real source-controller fetches the commit over SSH with it,
// and the deploy goes live: the Kustomization Ready at the commit, the deployment succeeded,
// the Deployment in the namespace. The key and its passphrase are in no row and no log line.
func TestSSHThroughFlux(t *testing.T) {
	const (
		slug       = "sshfleet"
		passphrase = "e2e-ssh-passphrase-7b3e91"
	)
	ctx, c := context.Background(), rig.Env.Client
	// A Git server of its own, over SSH only as far as Flux and fluxbridge are concerned: its
	// HTTP side asks for a password neither has.
	gs, err := gittestserver.NewTempGitServer()
	require.NoError(t, err)
	gs.AutoCreate().Auth(gitUser, gitPass).KeyDir(t.TempDir())
	creds := gittest.StartSSH(t, gs)
	sshGit := &gitServer{srv: gs}
	sshGit.initRepo(t, slug)
	url := gs.SSHAddress() + "/" + slug + ".git"
	identity := encryptKey(t, creds["identity"], passphrase)

	mustCall(t, http.StatusCreated, http.MethodPost, "/projects", obj{"slug": slug, "name": slug})
	mustCall(t, http.StatusCreated, http.MethodPost, "/projects/"+slug+"/environments", obj{"name": "dev", "kind": "dev", "cluster": clusterName})
	p := &project{slug: slug, namespace: slug + "-dev"}
	repo := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/repositories"), obj{
		"name": "fleet", "url": url,
		"auth":   obj{"type": "ssh", "private_key": string(identity), "passphrase": passphrase, "known_hosts": string(creds["known_hosts"])},
		"gitops": obj{"enabled": true, "branch": "main", "path": "clusters"},
	})
	p.repoID = id(repo, "id")
	require.Equal(t, "ssh", repo["auth_type"], "%v", repo)
	v := mustCall(t, http.StatusOK, http.MethodPost, p.path("/repositories/%d/validate", p.repoID), nil)
	require.Equal(t, true, v["valid"], "fluxbridge reaches the server over SSH: %v", v)

	gr := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/resources"), obj{
		"kind": "GitRepository", "namespace": fluxNamespace, "name": slug, "cluster": clusterName, "repository_id": p.repoID,
		"config": obj{"ref": obj{"branch": "main"}, "interval": "10m"},
	})
	p.gitRepoID = id(gr["items"].([]any)[0].(obj), "id")
	k := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/resources"), obj{
		"kind": "Kustomization", "namespace": fluxNamespace, "name": slug + "-dev", "repository_id": p.repoID,
		"config": obj{
			"sourceRef": obj{"kind": "GitRepository", "name": slug}, "path": "./clusters/dev", "prune": true,
			"wait": true, "interval": "10m", "retryInterval": "15s", "timeout": "1m",
		},
	})
	p.kustID = id(k["items"].([]any)[0].(obj), "id")
	// The platform's namespace of the environment (the Kustomization's apply job may have made
	// it already, for the environment's ServiceAccount).
	require.NoError(t, client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.namespace}})))

	// The deploy needs the fetch; the secrets are looked for in any case.
	fetched := t.Run("the Secret has Flux's SSH keys and source-controller fetches over SSH", func(t *testing.T) {
		p.waitResource(t, p.gitRepoID, "ready", sshGit.head(t, slug))
		// The Kustomization is in the cluster too before the first deploy (it fails until
		// then: its path does not exist yet).
		require.Eventually(t, func() bool { return p.resource(t, p.kustID)["apply_status"] == "applied" }, settleTimeout, pollEvery)
		var obj sourcev1.GitRepository
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: slug}, &obj))
		require.Equal(t, url, obj.Spec.URL)
		require.NotNil(t, obj.Spec.SecretRef)
		var s corev1.Secret
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: fluxNamespace, Name: obj.Spec.SecretRef.Name}, &s))
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"identity", "identity.pub", "known_hosts", "password"}, keys)
		require.Equal(t, identity, s.Data["identity"])
		require.Equal(t, string(creds["identity.pub"]), string(s.Data["identity.pub"]), "the public half of the key")
		require.Equal(t, string(creds["known_hosts"]), string(s.Data["known_hosts"]))
		require.Equal(t, passphrase, string(s.Data["password"]), "source-controller reads the key's passphrase from password")
	})

	if fetched {
		t.Run("a UI deploy goes live", func(t *testing.T) {
			depID := p.deploy(t, microservice("api", "1.0.0", 1))
			d := p.waitDeployment(t, depID, "succeeded")
			sha := d["commit_sha"].(string)
			require.Equal(t, sshGit.head(t, slug), sha, "fluxbridge pushed the commit over SSH")
			require.Contains(t, d["revision"], sha, "Flux reported that commit applied")
			p.waitResource(t, p.kustID, "ready", sha)
			p.waitResource(t, p.gitRepoID, "ready", sha)
			requireImage(t, p.namespace, "api", "registry.example.com/acme/api:1.0.0", 1)
		})
	}

	t.Run("the key and its passphrase are in no row and no log line", func(t *testing.T) {
		lines := strings.Split(strings.TrimSpace(string(identity)), "\n")
		needles := []string{"PRIVATE KEY", lines[len(lines)/2], passphrase}
		logs := rig.App.logs.tail(1 << 30)
		for _, n := range needles {
			require.NotContains(t, logs, n)
		}
		requireNowhereInDB(t, needles...)
	})
}

// encryptKey re-encodes an OpenSSH private key under a passphrase.
func encryptKey(t testing.TB, key []byte, passphrase string) []byte {
	t.Helper()
	raw, err := ssh.ParseRawPrivateKey(key)
	require.NoError(t, err)
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte(passphrase))
	require.NoError(t, err)
	return pem.EncodeToMemory(block)
}

// requireNowhereInDB requires that no row of any table of fluxbridge's database (River's
// jobs included) holds any of needles in its text form.
func requireNowhereInDB(t testing.TB, needles ...string) {
	t.Helper()
	ctx := context.Background()
	rows, err := rig.App.pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	for _, tbl := range tables {
		for _, n := range needles {
			var count int
			q := fmt.Sprintf(`SELECT count(*) FROM %s t WHERE strpos(t::text, $1) > 0`, pgx.Identifier{tbl}.Sanitize())
			require.NoError(t, rig.App.pool.QueryRow(ctx, q, n).Scan(&count), tbl)
			assert.Zero(t, count, "table %s holds a secret", tbl)
		}
	}
}
