package fluxspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
)

// Template is the Flux side of a deploy template (R7b.2): the settings of the environment's
// GitRepository and Kustomization that a deploy creates when the environment has none, and,
// for a helm-app, the HelmRelease that installs the app's chart and the chart's source. It is
// the "flux" object of a template and of a deploy body; keys use Flux's spelling, like a
// resource's config.
type Template struct {
	GitRepository *GitRepositorySettings `json:"gitRepository,omitempty"`
	Kustomization *KustomizationSettings `json:"kustomization,omitempty"`
	HelmRelease   *HelmReleaseTemplate   `json:"helmRelease,omitempty"`
}

// GitRepositorySettings shape the environment's GitRepository. Its ref is the branch deploys
// push to, so Ref may only name that branch (a chart's Git source takes any ref).
type GitRepositorySettings struct {
	Interval string  `json:"interval,omitempty"`
	Timeout  string  `json:"timeout,omitempty"`
	Ref      *GitRef `json:"ref,omitempty"`
}

// KustomizationSettings shape the environment's Kustomization: how often it re-applies, how it
// retries, whether it prunes, and the health checks (Wait: every object it applies; or the
// objects HealthChecks names) that must pass within Timeout for an apply to count as Ready.
type KustomizationSettings struct {
	Interval      string        `json:"interval,omitempty"`
	RetryInterval string        `json:"retryInterval,omitempty"`
	Timeout       string        `json:"timeout,omitempty"`
	Prune         *bool         `json:"prune,omitempty"`
	Wait          *bool         `json:"wait,omitempty"`
	HealthChecks  []HealthCheck `json:"healthChecks,omitempty"`
	DependsOn     []Dependency  `json:"dependsOn,omitempty"`
}

// HelmReleaseTemplate is a helm-app's HelmRelease: the chart and where it comes from, its
// values, and how Helm recovers from a failed install or upgrade. The release is named after
// the app and installs into the deploy's namespace; fluxbridge names the objects.
type HelmReleaseTemplate struct {
	Chart      *ChartTemplate   `json:"chart,omitempty"`
	Values     json.RawMessage  `json:"values,omitempty"`
	Interval   string           `json:"interval,omitempty"`
	Timeout    string           `json:"timeout,omitempty"`
	MaxHistory *int             `json:"maxHistory,omitempty"`
	Install    *InstallTemplate `json:"install,omitempty"`
	Upgrade    *UpgradeTemplate `json:"upgrade,omitempty"`
}

// ChartTemplate is the chart: a name in a Helm repository with a semver range (Flux installs
// the newest version in the range and upgrades when a newer one is published), or a path in a
// Git repository (the chart as checked out; pin it with the source's ref).
type ChartTemplate struct {
	Chart    string         `json:"chart,omitempty"`
	Version  string         `json:"version,omitempty"`
	Interval string         `json:"interval,omitempty"`
	Source   SourceTemplate `json:"source"`
}

// SourceTemplate is where the chart comes from: exactly one of a Helm repository and a Git
// repository.
type SourceTemplate struct {
	HelmRepository *HelmRepositorySource `json:"helmRepository,omitempty"`
	GitRepository  *GitChartSource       `json:"gitRepository,omitempty"`
}

// HelmRepositorySource is a Helm repository: an HTTP(S) index ("default") or an OCI registry.
type HelmRepositorySource struct {
	URL      string `json:"url,omitempty"`
	Type     string `json:"type,omitempty"`
	Interval string `json:"interval,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
}

// GitChartSource is a Git repository holding the chart. An empty URL is the environment's own
// repository (with its credentials).
type GitChartSource struct {
	URL      string  `json:"url,omitempty"`
	Ref      *GitRef `json:"ref,omitempty"`
	Interval string  `json:"interval,omitempty"`
	Timeout  string  `json:"timeout,omitempty"`
}

// InstallTemplate is how a failed install recovers.
type InstallTemplate struct {
	Remediation *Remediation `json:"remediation,omitempty"`
}

// UpgradeTemplate is how a failed upgrade recovers: Remediation (retries, then a rollback to
// the last release that worked, or an uninstall), and CleanupOnFail deleting what the failed
// upgrade created.
type UpgradeTemplate struct {
	Remediation   *Remediation `json:"remediation,omitempty"`
	CleanupOnFail bool         `json:"cleanupOnFail,omitempty"`
}

// DecodeTemplate reads raw (a "flux" object) strictly: unknown keys are refused. Problems are
// *FieldErrors under "flux". It does not validate; see Validate.
func DecodeTemplate(raw json.RawMessage) (*Template, error) {
	t := &Template{}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return t, nil
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(raw, &sections); err != nil || sections == nil {
		return nil, fieldErr("flux", "must be a JSON object with gitRepository, kustomization and helmRelease")
	}
	// Section by section, so that an unknown key is named with its section.
	for _, key := range slices.Sorted(maps.Keys(sections)) {
		v := sections[key]
		var dst any
		switch key {
		case "gitRepository":
			dst = &t.GitRepository
		case "kustomization":
			dst = &t.Kustomization
		case "helmRelease":
			if err := checkChartKeys(v); err != nil {
				return nil, err
			}
			dst = &t.HelmRelease
		default:
			return nil, fieldErr("flux."+key, "unknown setting; a template's Flux side has gitRepository, kustomization and helmRelease")
		}
		if err := decodeStrict(v, dst); err != nil {
			return nil, reprefix(err, "config", "flux."+key)
		}
	}
	return t, nil
}

// checkChartKeys decodes a helmRelease's chart on its own first, so that an unknown key in it is
// named "flux.helmRelease.chart.<key>".
func checkChartKeys(helmRelease json.RawMessage) error {
	var parts map[string]json.RawMessage
	if json.Unmarshal(helmRelease, &parts) != nil || parts["chart"] == nil {
		return nil // the section's own decoding reports it
	}
	var c *ChartTemplate
	return reprefix(decodeStrict(parts["chart"], &c), "config", "flux.helmRelease.chart")
}

// Validate checks every setting t sets. With partial (a saved template) the chart's name and
// source may still be missing: a deploy brings them.
func (t *Template) Validate(partial bool) error {
	return firstErr(t.GitRepository.validate(), t.Kustomization.validate(), t.HelmRelease.validate(partial))
}

func (s *GitRepositorySettings) validate() error {
	if s == nil {
		return nil
	}
	const f = "flux.gitRepository"
	_, e1 := interval(f+".interval", s.Interval, defaultGitInterval)
	_, e2 := timeout(f+".timeout", s.Timeout)
	var e3 error
	if r := s.Ref; r != nil {
		if r.Tag != "" || r.SemVer != "" || r.Name != "" || r.Commit != "" {
			e3 = fieldErr(f+".ref", "the environment's GitRepository follows the branch deploys push to, so only ref.branch may be set; a chart's Git source takes any ref (flux.helmRelease.chart.source.gitRepository.ref)")
		} else {
			e3 = gitBranch(f+".ref.branch", r.Branch)
		}
	}
	return firstErr(e1, e2, e3)
}

func (s *KustomizationSettings) validate() error {
	if s == nil {
		return nil
	}
	const f = "flux.kustomization"
	_, e1 := interval(f+".interval", s.Interval, defaultApplierInterval)
	_, e2 := duration(f+".retryInterval", s.RetryInterval, minInterval, maxInterval)
	_, e3 := timeout(f+".timeout", s.Timeout)
	errs := []error{e1, e2, e3, validateDeps(f+".dependsOn", s.DependsOn)}
	for i, hc := range s.HealthChecks {
		hf := f + ".healthChecks[" + itoa(i) + "]"
		if hc.Kind == "" {
			errs = append(errs, fieldErr(hf+".kind", "is required"))
		}
		errs = append(errs, objectName(hf+".name", hc.Name), namespaceName(hf+".namespace", hc.Namespace))
	}
	return firstErr(errs...)
}

func (h *HelmReleaseTemplate) validate(partial bool) error {
	if h == nil {
		return nil
	}
	const f = "flux.helmRelease"
	errs := []error{h.Chart.validate(partial)}
	if len(bytes.TrimSpace(h.Values)) > 0 && string(bytes.TrimSpace(h.Values)) != "null" {
		var m map[string]any
		if err := json.Unmarshal(h.Values, &m); err != nil || m == nil {
			errs = append(errs, fieldErr(f+".values", "must be a JSON object of Helm values"))
		}
	}
	_, e1 := interval(f+".interval", h.Interval, defaultApplierInterval)
	_, e2 := timeout(f+".timeout", h.Timeout)
	errs = append(errs, e1, e2)
	if h.MaxHistory != nil && *h.MaxHistory < 0 {
		errs = append(errs, fieldErr(f+".maxHistory", "must not be negative"))
	}
	if h.Install != nil {
		errs = append(errs, validateRemediation(f+".install.remediation", h.Install.Remediation, false))
	}
	if h.Upgrade != nil {
		errs = append(errs, validateRemediation(f+".upgrade.remediation", h.Upgrade.Remediation, true))
	}
	return firstErr(errs...)
}

func validateRemediation(field string, r *Remediation, upgrade bool) error {
	if r == nil {
		return nil
	}
	if r.Retries < -1 || r.Retries > 100 {
		return fieldErr(field+".retries", "must be between -1 (forever) and 100, got %d", r.Retries)
	}
	if !upgrade && r.Strategy != "" {
		return fieldErr(field+".strategy", "is only for upgrades: a failed install is always uninstalled before the next try")
	}
	return oneOf(field+".strategy", r.Strategy, "rollback", "uninstall")
}

func (c *ChartTemplate) validate(partial bool) error {
	const f = "flux.helmRelease.chart"
	if c == nil {
		if partial {
			return nil
		}
		return fieldErr(f, "is required: name the chart and its source, e.g. {\"chart\": \"podinfo\", \"version\": \"6.x\", \"source\": {\"helmRepository\": {\"url\": \"https://stefanprodan.github.io/podinfo\"}}}")
	}
	s := c.Source
	var errs []error
	switch {
	case c.Chart == "" && !partial:
		errs = append(errs, fieldErr(f+".chart", "is required: the chart's name in the Helm repository, or its path in the Git repository"))
	case c.Chart != "" && s.GitRepository != nil:
		_, e := relPath(f+".chart", c.Chart)
		errs = append(errs, e)
	case c.Chart != "":
		errs = append(errs, objectName(f+".chart", c.Chart))
	}
	switch {
	case s.HelmRepository != nil && s.GitRepository != nil:
		errs = append(errs, fieldErr(f+".source", "set helmRepository or gitRepository, not both"))
	case s.HelmRepository == nil && s.GitRepository == nil && !partial:
		errs = append(errs, fieldErr(f+".source", "is required: a helmRepository (url) or a gitRepository (url, ref; no url is the environment's repository)"))
	case s.HelmRepository != nil:
		r := s.HelmRepository
		sf := f + ".source.helmRepository"
		errs = append(errs, oneOf(sf+".type", r.Type, "default", "oci"))
		if r.Type == "oci" {
			errs = append(errs, repoURL(sf+".url", r.URL, "oci"))
		} else {
			errs = append(errs, repoURL(sf+".url", r.URL, "https", "http"))
		}
		_, e1 := interval(sf+".interval", r.Interval, defaultHelmRepoInterval)
		_, e2 := timeout(sf+".timeout", r.Timeout)
		errs = append(errs, e1, e2)
	case s.GitRepository != nil:
		g := s.GitRepository
		sf := f + ".source.gitRepository"
		if c.Version != "" {
			errs = append(errs, fieldErr(f+".version", "a chart from Git is the one in the checkout, whatever its version: pin it with %s.ref (a tag or a semver range of tags)", sf))
		}
		if g.URL != "" {
			errs = append(errs, repoURL(sf+".url", g.URL, "https", "http", "ssh"))
		}
		if g.Ref != nil {
			errs = append(errs, g.Ref.validate(sf+".ref"))
		}
		_, e1 := interval(sf+".interval", g.Interval, defaultGitInterval)
		_, e2 := timeout(sf+".timeout", g.Timeout)
		errs = append(errs, e1, e2)
	}
	if c.Version != "" && s.GitRepository == nil {
		errs = append(errs, semverRange(f+".version", c.Version))
	}
	_, e := interval(f+".interval", c.Interval, defaultHelmChartInterval)
	return firstErr(append(errs, e)...)
}

// ApplyTo sets what s sets on the environment's GitRepository c.
func (s *GitRepositorySettings) ApplyTo(c *GitRepositoryConfig) {
	if s == nil {
		return
	}
	c.Interval = or(s.Interval, c.Interval)
	c.Timeout = or(s.Timeout, c.Timeout)
}

// ApplyTo sets what s sets on the environment's Kustomization c; its health checks and
// dependencies are added to c's.
func (s *KustomizationSettings) ApplyTo(c *KustomizationConfig) {
	if s == nil {
		return
	}
	c.Interval = or(s.Interval, c.Interval)
	c.RetryInterval = or(s.RetryInterval, c.RetryInterval)
	c.Timeout = or(s.Timeout, c.Timeout)
	if s.Prune != nil {
		p := *s.Prune
		c.Prune = &p
	}
	if s.Wait != nil {
		c.Wait = *s.Wait
	}
	c.HealthChecks = append(c.HealthChecks, s.HealthChecks...)
	c.DependsOn = append(c.DependsOn, s.DependsOn...)
}

// SourceKind is the kind of the chart's source: HelmRepository or GitRepository.
func (h *HelmReleaseTemplate) SourceKind() string {
	if h.Chart != nil && h.Chart.Source.GitRepository != nil {
		return KindGitRepository
	}
	return KindHelmRepository
}

// SourceConfig is the config of the chart's source object (a *HelmRepositoryConfig or a
// *GitRepositoryConfig; a Git source without URL reads the resource's repository).
func (h *HelmReleaseTemplate) SourceConfig() Spec {
	s := h.Chart.Source
	if g := s.GitRepository; g != nil {
		return &GitRepositoryConfig{URL: g.URL, Ref: g.Ref, Interval: g.Interval, Timeout: g.Timeout}
	}
	r := s.HelmRepository
	return &HelmRepositoryConfig{URL: r.URL, Type: r.Type, Interval: r.Interval, Timeout: r.Timeout}
}

// ReleaseConfig is the config of the HelmRelease that installs the chart from source as
// release releaseName into targetNamespace.
func (h *HelmReleaseTemplate) ReleaseConfig(source SourceRef, releaseName, targetNamespace string) *HelmReleaseConfig {
	c := &HelmReleaseConfig{
		Chart:       &HelmChartSpec{Chart: h.Chart.Chart, Version: h.Chart.Version, Interval: h.Chart.Interval, SourceRef: source},
		ReleaseName: releaseName, TargetNamespace: targetNamespace,
		Interval: h.Interval, Timeout: h.Timeout, MaxHistory: h.MaxHistory,
	}
	if v := bytes.TrimSpace(h.Values); len(v) > 0 && string(v) != "null" {
		c.Values = v
	}
	if h.Install != nil && h.Install.Remediation != nil {
		r := *h.Install.Remediation
		c.Install = &r
	}
	if h.Upgrade != nil {
		c.CleanupOnFail = h.Upgrade.CleanupOnFail
		if h.Upgrade.Remediation != nil {
			r := *h.Upgrade.Remediation
			c.Upgrade = &r
		}
	}
	return c
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// reprefix renames the field of a *FieldError from prefix from to prefix to.
func reprefix(err error, from, to string) error {
	var fe *FieldError
	if errors.As(err, &fe) && (fe.Field == from || strings.HasPrefix(fe.Field, from+".")) {
		fe.Field = to + strings.TrimPrefix(fe.Field, from)
	}
	return err
}
