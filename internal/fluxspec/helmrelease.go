package fluxspec

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func itoa(i int) string { return strconv.Itoa(i) }

// HelmChartSpec is the chart of a HelmRelease from a HelmRepository (by name) or a
// GitRepository or Bucket (by path). A semver range in Version is the auto-upgrade strategy:
// Flux installs the newest chart version in the range and upgrades when a newer one appears.
type HelmChartSpec struct {
	Chart             string    `json:"chart"`
	Version           string    `json:"version,omitempty"`
	SourceRef         SourceRef `json:"sourceRef"`
	Interval          string    `json:"interval,omitempty"`
	ReconcileStrategy string    `json:"reconcileStrategy,omitempty"`
	ValuesFiles       []string  `json:"valuesFiles,omitempty"`
}

// Remediation is how many times Helm retries a failed install or upgrade, and for upgrades
// whether it then rolls back or uninstalls (an install always uninstalls), and whether the
// last failure, with no retries left, is remediated too (RemediateLastFailure; Flux's default
// is false for an install, and for an upgrade true exactly when Retries is above zero).
type Remediation struct {
	Retries              int    `json:"retries,omitempty"`
	Strategy             string `json:"strategy,omitempty"`
	RemediateLastFailure *bool  `json:"remediateLastFailure,omitempty"`
}

// HelmReleaseConfig is the config of a HelmRelease: Chart (a chart template) or ChartRef (an
// existing OCIRepository or HelmChart), Values as a JSON object.
type HelmReleaseConfig struct {
	Chart             *HelmChartSpec  `json:"chart,omitempty"`
	ChartRef          *SourceRef      `json:"chartRef,omitempty"`
	ReleaseName       string          `json:"releaseName,omitempty"`
	TargetNamespace   string          `json:"targetNamespace,omitempty"`
	Interval          string          `json:"interval,omitempty"`
	Timeout           string          `json:"timeout,omitempty"`
	MaxHistory        *int            `json:"maxHistory,omitempty"`
	Values            json.RawMessage `json:"values,omitempty"`
	DependsOn         []Dependency    `json:"dependsOn,omitempty"`
	DependencyTimeout string          `json:"dependencyTimeout,omitempty"`
	ServiceAccount    string          `json:"serviceAccountName,omitempty"`
	CreateNamespace   bool            `json:"createNamespace,omitempty"`
	Install           *Remediation    `json:"install,omitempty"`
	Upgrade           *Remediation    `json:"upgrade,omitempty"`
	CleanupOnFail     bool            `json:"cleanupOnFail,omitempty"`
	Force             bool            `json:"force,omitempty"`
}

// Kind implements Spec.
func (*HelmReleaseConfig) Kind() string { return KindHelmRelease }

// Dependencies implements Spec.
func (c *HelmReleaseConfig) Dependencies(namespace string) []Ref {
	return refsOf(KindHelmRelease, namespace, c.DependsOn)
}

// DependencyWait is how long a manual reconcile waits for dependencies that are not ready.
func (c *HelmReleaseConfig) DependencyWait() time.Duration {
	return dependencyWait(c.DependencyTimeout)
}

func (c *HelmReleaseConfig) validate() error {
	var errs []error
	switch {
	case c.Chart == nil && c.ChartRef == nil:
		errs = append(errs, fieldErr("config.chart", "is required (or config.chartRef)"))
	case c.Chart != nil && c.ChartRef != nil:
		errs = append(errs, fieldErr("config.chartRef", "set chart or chartRef, not both"))
	case c.Chart != nil:
		ch := c.Chart
		if ch.Chart == "" {
			errs = append(errs, fieldErr("config.chart.chart", "is required (a chart name, or a path in a Git source)"))
		}
		errs = append(errs, ch.SourceRef.validate("config.chart.sourceRef", KindHelmRepository, KindGitRepository, KindBucket),
			chartOf("config.chart.", ch.SourceRef.Kind, ch.Chart, ch.Version))
		_, e := interval("config.chart.interval", ch.Interval, defaultHelmChartInterval)
		errs = append(errs, e, oneOf("config.chart.reconcileStrategy", ch.ReconcileStrategy, "ChartVersion", "Revision"))
	default:
		errs = append(errs, c.ChartRef.validate("config.chartRef", KindOCIRepository, KindHelmChart))
	}
	if len(bytes.TrimSpace(c.Values)) > 0 {
		var m map[string]any
		if err := json.Unmarshal(c.Values, &m); err != nil || m == nil {
			errs = append(errs, fieldErr("config.values", "must be a JSON object of Helm values"))
		}
	}
	_, e1 := interval("config.interval", c.Interval, defaultApplierInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	_, e3 := duration("config.dependencyTimeout", c.DependencyTimeout, time.Second, maxDependencyTimeout)
	errs = append(errs, e1, e2, e3, namespaceName("config.targetNamespace", c.TargetNamespace),
		validateDeps("config.dependsOn", c.DependsOn))
	if c.ReleaseName != "" && len(c.ReleaseName) > 53 {
		errs = append(errs, fieldErr("config.releaseName", "must be at most 53 characters (a Helm limit)"))
	}
	if c.MaxHistory != nil && *c.MaxHistory < 0 {
		errs = append(errs, fieldErr("config.maxHistory", "must not be negative"))
	}
	for name, r := range map[string]*Remediation{"install": c.Install, "upgrade": c.Upgrade} {
		if r == nil {
			continue
		}
		if r.Retries < -1 || r.Retries > 100 {
			errs = append(errs, fieldErr("config."+name+".retries", "must be between -1 (forever) and 100"))
		}
		if name == "install" && r.Strategy != "" {
			errs = append(errs, fieldErr("config.install.strategy", "is only for upgrades"))
		}

		errs = append(errs, oneOf("config."+name+".strategy", r.Strategy, "rollback", "uninstall"))
	}
	return firstErr(errs...)
}

// chartOf checks a chart (its presence is the caller's check) and its version against the
// kind of its source. From a HelmRepository: a chart name and an optional semver range. From a
// GitRepository or Bucket: a directory inside the source and no version, which Flux ignores
// there (it installs the version the chart's Chart.yaml has at the source's revision); "*",
// the CRD's default, is let through so that an imported HelmRelease validates. prefix is
// "config." or "config.chart.".
func chartOf(prefix, kind, chart, version string) error {
	if kind == KindGitRepository || kind == KindBucket {
		if _, err := relPath(prefix+"chart", chart); err != nil {
			return err
		}
		if version != "" && version != "*" {
			return fieldErr(prefix+"version", "is ignored by Flux for a chart from a %s: it installs the version in the chart's Chart.yaml at the source's revision; leave version out and commit a new version to upgrade", kind)
		}
		return nil
	}
	if version != "" {
		return semverRange(prefix+"version", version)
	}
	return nil
}

func (c *HelmReleaseConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultApplierInterval)
	to, _ := timeout("", c.Timeout)
	obj := &helmv2.HelmRelease{
		TypeMeta: metav1.TypeMeta{APIVersion: helmv2.GroupVersion.String(), Kind: helmv2.HelmReleaseKind},
		Spec: helmv2.HelmReleaseSpec{
			Interval: iv, Timeout: to, ReleaseName: c.ReleaseName, TargetNamespace: c.TargetNamespace,
			MaxHistory: c.MaxHistory, DependsOn: metaDeps(c.DependsOn), ServiceAccountName: t.serviceAccount(c.ServiceAccount),
			Suspend: t.suspendApplier(),
		},
	}
	if t.ServiceAccount != "" && c.TargetNamespace != "" {
		// Confined to an environment: Helm keeps its release records where it installs, the
		// one place the environment's ServiceAccount may write.
		obj.Spec.StorageNamespace = c.TargetNamespace
	}
	if ch := c.Chart; ch != nil {
		civ, _ := duration("", ch.Interval, minInterval, maxInterval)
		obj.Spec.Chart = &helmv2.HelmChartTemplate{Spec: helmv2.HelmChartTemplateSpec{
			Chart: ch.Chart, Version: ch.Version, Interval: civ, ReconcileStrategy: ch.ReconcileStrategy,
			ValuesFiles: ch.ValuesFiles,
			SourceRef: helmv2.CrossNamespaceObjectReference{
				Kind: ch.SourceRef.Kind, Name: ch.SourceRef.Name, Namespace: ch.SourceRef.Namespace,
			},
		}}
	}
	if r := c.ChartRef; r != nil {
		obj.Spec.ChartRef = &helmv2.CrossNamespaceSourceReference{Kind: r.Kind, Name: r.Name, Namespace: r.Namespace}
	}
	if len(bytes.TrimSpace(c.Values)) > 0 {
		obj.Spec.Values = &apiextensionsv1.JSON{Raw: c.Values}
	}
	if c.CreateNamespace || c.Install != nil {
		obj.Spec.Install = &helmv2.Install{CreateNamespace: c.CreateNamespace}
		if c.Install != nil {
			obj.Spec.Install.Remediation = &helmv2.InstallRemediation{Retries: c.Install.Retries, RemediateLastFailure: c.Install.RemediateLastFailure}
		}
	}
	if c.Upgrade != nil || c.CleanupOnFail || c.Force {
		obj.Spec.Upgrade = &helmv2.Upgrade{CleanupOnFail: c.CleanupOnFail, Force: c.Force}
		if c.Upgrade != nil {
			obj.Spec.Upgrade.Remediation = &helmv2.UpgradeRemediation{Retries: c.Upgrade.Retries, RemediateLastFailure: c.Upgrade.RemediateLastFailure}
			if c.Upgrade.Strategy != "" {
				s := helmv2.RemediationStrategy(c.Upgrade.Strategy)
				obj.Spec.Upgrade.Remediation.Strategy = &s
			}
		}
	}
	return obj, nil
}
