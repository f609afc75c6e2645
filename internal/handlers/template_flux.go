package handlers

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
)

// Recovery defaults of the built-in templates (R7b.5): a HelmRelease retries a failed install
// (uninstalling in between) and a failed upgrade, and then rolls the upgrade back to the last
// release that worked; the environment's Kustomization health-checks what it applies within a
// timeout.
const (
	helmRetries     = 3
	helmTimeout     = "5m" // per Helm action, its own waiting for the chart's objects included
	helmInterval    = "10m"
	helmMaxHistory  = 5 // releases Helm keeps, so a rollback has something to go back to
	rollbackOnFail  = "rollback"
	helmAppObjects  = "whatever the chart installs"
	chartSourceKind = "HelmRepository or GitRepository (the chart's source)"
)

// builtinFlux is the Flux side of built-in template kind: the environment's GitRepository and
// Kustomization as a first deploy creates them (manifest.ProposedFlux), and for a helm-app a
// HelmRelease with the recovery defaults and no chart (a deploy or a saved template names it).
func builtinFlux(kind string) *fluxspec.Template {
	d := manifest.ProposedFlux()
	prune, wait := d.Prune, d.Wait
	t := &fluxspec.Template{
		GitRepository: &fluxspec.GitRepositorySettings{Interval: d.GitInterval},
		Kustomization: &fluxspec.KustomizationSettings{Interval: d.Interval, RetryInterval: d.RetryInterval, Timeout: d.Timeout, Prune: &prune, Wait: &wait},
	}
	if kind == manifest.KindHelmApp {
		last, history := true, helmMaxHistory
		t.HelmRelease = &fluxspec.HelmReleaseTemplate{
			Interval: helmInterval, Timeout: helmTimeout, MaxHistory: &history,
			Install: &fluxspec.InstallTemplate{Remediation: &fluxspec.Remediation{Retries: helmRetries}},
			Upgrade: &fluxspec.UpgradeTemplate{CleanupOnFail: true, Remediation: &fluxspec.Remediation{
				Retries: helmRetries, RemediateLastFailure: &last, Strategy: rollbackOnFail,
			}},
		}
	}
	return t
}

// builtinFluxJSON is builtinFlux as JSON, the base that saved templates and deploys patch.
func builtinFluxJSON(kind string) json.RawMessage {
	b, _ := json.Marshal(builtinFlux(kind))
	return b
}

// effectiveFlux is the Flux side a deploy of kind uses: the built-in's, with the saved
// template's and then the request's "flux" laid over it as JSON merge patches (null removes a
// setting), checked in full when partial is false. Problems are 400s naming "flux.…".
func effectiveFlux(kind string, patches []json.RawMessage, partial bool) (json.RawMessage, *fluxspec.Template, error) {
	doc := builtinFluxJSON(kind)
	for _, p := range patches {
		if len(p) == 0 || string(p) == "null" {
			continue
		}
		var err error
		if doc, err = mergePatch(doc, p); err != nil {
			return nil, nil, errBadRequest("flux", "must be a JSON object (%v)", err)
		}
	}
	t, err := checkFlux(kind, doc, partial)
	return doc, t, err
}

// checkFlux decodes and validates a "flux" object for kind.
func checkFlux(kind string, raw json.RawMessage, partial bool) (*fluxspec.Template, error) {
	t, err := fluxspec.DecodeTemplate(raw)
	if err != nil {
		return nil, specError(err)
	}
	if err := t.Validate(partial); err != nil {
		return nil, specError(err)
	}
	switch {
	case kind == manifest.KindHelmApp && t.HelmRelease == nil:
		return nil, errBadRequest("flux.helmRelease", "a helm-app installs its chart through a HelmRelease; it cannot be removed")
	case kind != manifest.KindHelmApp && t.HelmRelease != nil:
		return nil, errBadRequest("flux.helmRelease", "only a helm-app installs a chart; a %s renders its own manifests", kind)
	}
	return t, nil
}

// fluxObjects names the Flux objects a template's deploy relies on, for a person.
func fluxObjects(t *fluxspec.Template) []string {
	out := []string{"GitRepository (the environment's, if it has none)", "Kustomization (the environment's, if it has none)"}
	if t == nil || t.HelmRelease == nil {
		return out
	}
	src := chartSourceKind
	if c := t.HelmRelease.Chart; c != nil && (c.Source.HelmRepository != nil || c.Source.GitRepository != nil) {
		src = t.HelmRelease.SourceKind() + " (the chart's source)"
	}
	return append(out, src, fluxspec.KindHelmRelease)
}

// renameField renames the field of a 400 from prefix from to prefix to: a resource config's
// "config.dependsOn[0]" is a template's "flux.kustomization.dependsOn[0]".
func renameField(err error, from, to string) error {
	var he *httpError
	if errors.As(err, &he) && strings.HasPrefix(he.Field, from) {
		he.Field = to + strings.TrimPrefix(he.Field, from)
	}
	return err
}
