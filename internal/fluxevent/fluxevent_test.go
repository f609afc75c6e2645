package fluxevent_test

import (
	"encoding/json"
	"errors"
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent/fluxeventtest"
)

func TestDecodeFixtures(t *testing.T) {
	tests := []struct {
		name       string
		fixture    string
		wantStatus fluxevent.Status
		wantRev    string
		wantSHA    string
		applied    bool
	}{
		{"git artifact", fluxeventtest.GitRepositoryNewArtifact, fluxevent.StatusReady, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", false},
		{"git auth failure", fluxeventtest.GitRepositoryAuthFailed, fluxevent.StatusFailed, "", "", false},
		{"kustomization applied", fluxeventtest.KustomizationSucceeded, fluxevent.StatusReady, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", true},
		{"kustomization prefixed metadata", fluxeventtest.KustomizationPrefixed, fluxevent.StatusReady, "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f", true},
		{"kustomization build failure", fluxeventtest.KustomizationBuildFailed, fluxevent.StatusFailed, "main@sha1:9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b", "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b", false},
		{"helm upgrade", fluxeventtest.HelmReleaseUpgradeSucceded, fluxevent.StatusReady, "6.7.1", "", true},
		{"helm upgrade failure", fluxeventtest.HelmReleaseUpgradeFailed, fluxevent.StatusFailed, "6.8.0", "", false},
		// Recorded from real controllers.
		{"real git artifact", fluxeventtest.ControllerGitNewArtifact, fluxevent.StatusReady, "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac", "2167c9be2c63d471f019e6f90382c72e289144ac", false},
		{"real git failure, no metadata", fluxeventtest.ControllerGitOperationFailed, fluxevent.StatusFailed, "", "", false},
		{"real chart packaged", fluxeventtest.ControllerHelmChartPackaged, fluxevent.StatusReady, "0.1.0", "", false},
		{"real helm install", fluxeventtest.ControllerHelmReleaseInstalled, fluxevent.StatusReady, "0.1.0", "", true},
		{"real kustomization bad path", fluxeventtest.ControllerKustomizationArtifact, fluxevent.StatusFailed, "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac", "2167c9be2c63d471f019e6f90382c72e289144ac", false},
		{"real kustomization apply", fluxeventtest.ControllerKustomizationProgress, fluxevent.StatusReconciling, "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac", "2167c9be2c63d471f019e6f90382c72e289144ac", false},
		{"real kustomization success", fluxeventtest.ControllerKustomizationSucceeded, fluxevent.StatusReady, "main@sha1:2167c9be2c63d471f019e6f90382c72e289144ac", "2167c9be2c63d471f019e6f90382c72e289144ac", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := fluxevent.Decode(fluxeventtest.Body(t, tt.fixture))
			require.NoError(t, err)
			require.Equal(t, tt.wantStatus, ev.Status())
			require.Equal(t, tt.wantRev, ev.Revision())
			require.Equal(t, tt.wantSHA, ev.CommitSHA())
			require.Equal(t, tt.applied, ev.Applied())
			require.NotContains(t, ev.Metadata, "token", "internal keys are dropped")
			for k := range ev.Metadata {
				require.NotContains(t, k, ".toolkit.fluxcd.io/", "group prefixes are stripped")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      []byte
		wantField string // "" means a malformed-JSON error
	}{
		{"not json", []byte(`{"involvedObject":`), ""},
		{"array", []byte(`[]`), ""},
		{"wrong type", []byte(`{"severity": 3}`), ""},
		{"trailing data", append(fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded), []byte(` {}`)...), ""},
		{"no kind", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.kind": nil}), "involvedObject.kind"},
		{"no name", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.name": ""}), "involvedObject.name"},
		{"no namespace", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.namespace": nil}), "involvedObject.namespace"},
		{"no severity", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"severity": nil}), "severity"},
		{"bad severity", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"severity": "warning"}), "severity"},
		{"no timestamp", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"timestamp": nil}), "timestamp"},
		{"no reason", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"reason": nil}), "reason"},
		{"no message", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"message": nil}), "message"},
		{"no controller", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"reportingController": nil}), "reportingController"},
		{"NUL in message", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"message": "applied\x00"}), "message"},
		{"NUL in name", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"involvedObject.name": "a\x00b"}), "involvedObject.name"},
		{"NUL in metadata", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"metadata.revision": "main@sha1:\x00"}), "metadata.revision"},
		{"NUL in instance", fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{"reportingInstance": "\x00"}), "reportingInstance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fluxevent.Decode(tt.body)
			require.Error(t, err)
			var fe *fluxevent.FieldError
			if tt.wantField == "" {
				require.ErrorIs(t, err, fluxevent.ErrMalformed)
				return
			}
			require.True(t, errors.As(err, &fe), "got %v", err)
			require.Equal(t, tt.wantField, fe.Field)
		})
	}
}

func TestFingerprint(t *testing.T) {
	base, err := fluxevent.Decode(fluxeventtest.Body(t, fluxeventtest.KustomizationSucceeded))
	require.NoError(t, err)
	prefixed, err := fluxevent.Decode(fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{
		"metadata": map[string]any{"kustomize.toolkit.fluxcd.io/revision": "main@sha1:5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f"},
	}))
	require.NoError(t, err)
	require.Equal(t, base.Fingerprint("a"), prefixed.Fingerprint("a"), "the same event in either metadata shape")
	require.NotEqual(t, base.Fingerprint("a"), base.Fingerprint("b"), "clusters never collide")

	for field, v := range map[string]any{
		"timestamp": "2026-11-26T09:14:05Z", "message": "other", "reason": "Progressing",
		"metadata.revision": "main@sha1:0000000000000000000000000000000000000000", "involvedObject.name": "other",
		"involvedObject.uid": "other-uid",
	} {
		other, err := fluxevent.Decode(fluxeventtest.Edit(t, fluxeventtest.KustomizationSucceeded, map[string]any{field: v}))
		require.NoError(t, err)
		require.NotEqual(t, base.Fingerprint("a"), other.Fingerprint("a"), field)
	}
}

func TestCommitSHA(t *testing.T) {
	sha := "5f6ad9ff4e1c9d3b2a7e0c8b1d2f3a4b5c6d7e8f"
	for rev, want := range map[string]string{
		"main@sha1:" + sha:                 sha,
		"sha1:" + sha:                      sha,
		"refs/heads/feature/x@sha1:" + sha: sha,
		"main/" + sha:                      sha,
		sha:                                sha,
		"6.7.1":                            "",
		"latest@sha256:" + sha + sha[:24]:  "",
		"":                                 "",
	} {
		require.Equal(t, want, fluxevent.CommitSHA(rev), rev)
	}
}

func TestNormalizeMetadata(t *testing.T) {
	got := fluxevent.NormalizeMetadata(map[string]string{
		"kustomize.toolkit.fluxcd.io/revision":  "prefixed",
		"revision":                              "plain",
		"source.toolkit.fluxcd.io/token":        "t",
		"helm.toolkit.fluxcd.io/originRevision": "o",
		"example.com/keep":                      "k",
		"cluster":                               "c",
	})
	require.Equal(t, map[string]string{"revision": "plain", "originRevision": "o", "example.com/keep": "k", "cluster": "c"}, got)
}

// FuzzDecode checks that no body makes Decode panic, and that an accepted event always has
// the required fields and a stable fingerprint.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{fluxeventtest.KustomizationSucceeded, fluxeventtest.GitRepositoryAuthFailed,
		fluxeventtest.HelmReleaseUpgradeSucceded, fluxeventtest.KustomizationPrefixed} {
		f.Add(fluxeventtest.Body(f, name))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"involvedObject":{"kind":"K","name":"n","namespace":"ns"},"severity":"info","timestamp":"2026-01-01T00:00:00Z","reason":"r","message":"m","reportingController":"c","metadata":{"a.toolkit.fluxcd.io/revision":"x","revision":"y"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := fluxevent.Decode(body)
		if err != nil {
			return
		}
		o := ev.InvolvedObject
		if o.Kind == "" || o.Name == "" || o.Namespace == "" || ev.Reason == "" || ev.Message == "" || ev.Timestamp.IsZero() {
			t.Fatalf("accepted an event without a required field: %+v", ev)
		}
		if ev.Fingerprint("c") != ev.Fingerprint("c") {
			t.Fatal("fingerprint is not stable")
		}
		if strings.ContainsRune(string(mustJSON(t, ev)), 0) || strings.Contains(string(mustJSON(t, ev)), `\u0000`) {
			t.Fatalf("accepted an event with a NUL character, which Postgres cannot store: %q", body)
		}
		_ = ev.Status()
		_ = ev.CommitSHA()
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzNormalizeMetadata: normalising is deterministic and idempotent, strips the toolkit group
// prefix of a "<group>.toolkit.fluxcd.io/<key>" key and drops the token, whatever the keys.
func FuzzNormalizeMetadata(f *testing.F) {
	f.Add("kustomize.toolkit.fluxcd.io/revision", "main@sha1:abc", "revision", "main@sha1:def")
	f.Add("source.toolkit.fluxcd.io/token", "secret", "a", "b")
	f.Add("a.toolkit.fluxcd.io/r", "1", "b.toolkit.fluxcd.io/r", "2")
	f.Add("", "", "token", "x")
	prefixed := regexp.MustCompile(`^[a-z0-9.-]+\.toolkit\.fluxcd\.io/([^/]+)$`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		in := map[string]string{k1: v1, k2: v2}
		once := fluxevent.NormalizeMetadata(in)
		for range 3 {
			if again := fluxevent.NormalizeMetadata(in); !maps.Equal(once, again) {
				t.Fatalf("not deterministic: %v then %v", once, again)
			}
		}
		if twice := fluxevent.NormalizeMetadata(once); !maps.Equal(once, twice) {
			t.Fatalf("not idempotent: %v then %v", once, twice)
		}
		if _, ok := once["token"]; ok {
			t.Fatalf("token kept: %v", once)
		}
		for k := range in {
			if m := prefixed.FindStringSubmatch(k); m != nil && m[1] != "token" {
				if _, ok := once[m[1]]; !ok {
					t.Fatalf("%q not normalised to %q: %v", k, m[1], once)
				}
			}
		}
	})
}
