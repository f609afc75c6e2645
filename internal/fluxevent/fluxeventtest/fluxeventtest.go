// Package fluxeventtest holds realistic notification-controller webhook bodies and helpers to
// sign and vary them, for the tests of every package that handles Flux events.
package fluxeventtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
)

//go:embed testdata/*.json
var fixtures embed.FS

// Fixture names.
const (
	GitRepositoryNewArtifact   = "gitrepository_new_artifact"
	GitRepositoryAuthFailed    = "gitrepository_auth_failed"
	KustomizationSucceeded     = "kustomization_succeeded"
	KustomizationBuildFailed   = "kustomization_build_failed"
	KustomizationPrefixed      = "kustomization_v1beta1_prefixed"
	HelmReleaseUpgradeSucceded = "helmrelease_upgrade_succeeded"
	HelmReleaseUpgradeFailed   = "helmrelease_upgrade_failed"
)

// Bodies recorded from real controllers (source- and kustomize-controller v1.9.6,
// helm-controller v1.4.0) as they post to --events-addr, before notification-controller
// rewrites them: metadata keys are group-prefixed and internal keys (token, digest) present.
const (
	ControllerGitNewArtifact         = "controller_gitrepository_newartifact"
	ControllerGitOperationFailed     = "controller_gitrepository_gitoperationfailed"
	ControllerHelmChartPackaged      = "controller_helmchart_chartpackagesucceeded"
	ControllerHelmReleaseInstalled   = "controller_helmrelease_installsucceeded"
	ControllerKustomizationArtifact  = "controller_kustomization_artifactfailed"
	ControllerKustomizationProgress  = "controller_kustomization_progressing"
	ControllerKustomizationSucceeded = "controller_kustomization_reconciliationsucceeded"
)

// Body returns a fixture's bytes.
func Body(t testing.TB, name string) []byte {
	t.Helper()
	b, err := fixtures.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return b
}

// Edit returns a fixture with fields changed: keys are dotted paths into the JSON object
// ("timestamp", "metadata.revision", "involvedObject.name"); a nil value deletes the field.
func Edit(t testing.TB, name string, set map[string]any) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(Body(t, name), &obj); err != nil {
		t.Fatal(err)
	}
	for path, v := range set {
		if err := setPath(obj, path, v); err != nil {
			t.Fatalf("edit %s: %v", path, err)
		}
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setPath(obj map[string]any, path string, v any) error {
	for {
		head, rest, nested := cut(path)
		if !nested {
			if v == nil {
				delete(obj, head)
			} else {
				obj[head] = v
			}
			return nil
		}
		next, ok := obj[head].(map[string]any)
		if !ok {
			next = map[string]any{}
			obj[head] = next
		}
		obj, path = next, rest
	}
}

// cut splits at the first dot that is not inside a metadata key such as
// "kustomize.toolkit.fluxcd.io/revision": a segment containing '/' is taken whole.
func cut(path string) (string, string, bool) {
	if i := indexDot(path); i >= 0 {
		return path[:i], path[i+1:], true
	}
	return path, "", false
}

func indexDot(path string) int {
	for i := 0; i < len(path); i++ {
		if path[i] == '.' {
			head := path[:i]
			if head == "metadata" || head == "involvedObject" {
				return i
			}
			return -1
		}
	}
	return -1
}

// SignSHA256 returns the X-Signature header value a generic-hmac Provider sends for body.
func SignSHA256(body, key []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return fmt.Sprintf("sha256=%s", hex.EncodeToString(mac.Sum(nil)))
}
