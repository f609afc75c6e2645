package handlers_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// TestRollbackTargetsOnlyPushesThatChangedTheApp: of the environment's Git pushes, the app's
// rollback targets list those that changed its directory, including one Flux applied together
// with a later push that did not (Flux applies only the newest commit); pushes that changed
// other apps only are left out, and the app's own deploys stay.
func TestRollbackTargetsOnlyPushesThatChangedTheApp(t *testing.T) {
	b := setupGitops(t, true)
	b.connect(t, gitPass)
	d1, sha1 := b.deployApplied(t, apiForm("1.4.2", 2))

	work := t.TempDir()
	gitCLI(t, work, "clone", "-q", filepath.Join(b.gitRoot, "fleet.git"), ".")
	push := func(files map[string]string, msg string) string {
		for p, c := range files {
			require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(work, p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(work, p), []byte(c), 0o644))
		}
		gitCLI(t, work, "add", "-A")
		gitCLI(t, work, "commit", "-q", "-m", msg)
		gitCLI(t, work, "push", "-q", "origin", "HEAD:main")
		return gitCLI(t, work, "rev-parse", "HEAD")
	}
	applied := func(sha string) {
		b.fluxApplied(t, sha)
		require.Eventually(t, func() bool {
			return b.count(t, `SELECT count(*) FROM deployments WHERE deployment_method = 'gitops-git' AND status = 'succeeded' AND commit_sha = $1`, sha) == 1
		}, 30*time.Second, 50*time.Millisecond)
	}
	web1 := push(map[string]string{"clusters/production/web/cm.yaml": "kind: ConfigMap\n"}, "web only")
	applied(web1)
	api2 := push(map[string]string{"clusters/production/api/extra.yaml": "kind: ConfigMap\n"}, "api by hand")
	applied(api2)
	push(map[string]string{"clusters/production/api/extra.yaml": "kind: ConfigMap\ndata: {a: b}\n"}, "api again")
	carried := push(map[string]string{"clusters/production/web/cm.yaml": "kind: ConfigMap\ndata: {}\n"}, "web, and Flux applies both")
	applied(carried)
	web4 := push(map[string]string{"clusters/production/web/cm.yaml": "kind: ConfigMap\ndata: {x: y}\n"}, "web only again")
	applied(web4)

	status, targets := b.call(t, http.MethodGet, "/environments/production/apps/api/rollback-targets", nil)
	require.Equal(t, http.StatusOK, status, "%v", targets)
	var got []string
	for _, it := range targets["items"].([]any) {
		got = append(got, it.(map[string]any)["commit_sha"].(string))
	}
	require.Equal(t, []string{carried, api2, sha1}, got, "web1 %s, web4 %s left out", web1, web4)
	first := targets["items"].([]any)[0].(map[string]any)
	require.Equal(t, true, first["current"])
	require.Equal(t, store.MethodGitopsGit, first["deployment"].(map[string]any)["deployment_method"])

	last := targets["items"].([]any)[2].(map[string]any)
	require.Equal(t, float64(d1), last["deployment"].(map[string]any)["id"])

	// The page holds limit targets.
	status, targets = b.call(t, http.MethodGet, "/environments/production/apps/api/rollback-targets?limit=2", nil)
	require.Equal(t, http.StatusOK, status, "%v", targets)
	require.Len(t, targets["items"], 2)

	// An app fluxbridge never deployed: no directory known, no Git push listed.
	status, targets = b.call(t, http.MethodGet, "/environments/production/apps/web/rollback-targets", nil)
	require.Equal(t, http.StatusOK, status, "%v", targets)
	require.Empty(t, targets["items"])
}
