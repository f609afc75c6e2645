package fluxspec

import (
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	defaultApplierInterval = 10 * time.Minute
	// DefaultDependencyTimeout is how long a manual reconcile waits for dependencies that are
	// not ready before it reports the reconcile as timed out.
	DefaultDependencyTimeout = 5 * time.Minute
	maxDependencyTimeout     = 6 * time.Hour
)

// Dependency names an object of the same kind this one waits for; Namespace defaults to the
// object's own.
type Dependency struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

func validateDeps(field string, deps []Dependency) error {
	for i, d := range deps {
		f := field + "[" + itoa(i) + "]"
		if err := firstErr(objectName(f+".name", d.Name), namespaceName(f+".namespace", d.Namespace)); err != nil {
			return err
		}
	}
	return nil
}

func refsOf(kind, namespace string, deps []Dependency) []Ref {
	out := make([]Ref, 0, len(deps))
	for _, d := range deps {
		ns := d.Namespace
		if ns == "" {
			ns = namespace
		}
		out = append(out, Ref{Kind: kind, Namespace: ns, Name: d.Name})
	}
	return out
}

func metaDeps(deps []Dependency) []meta.DependencyReference {
	if len(deps) == 0 {
		return nil
	}
	out := make([]meta.DependencyReference, 0, len(deps))
	for _, d := range deps {
		out = append(out, meta.DependencyReference{Name: d.Name, Namespace: d.Namespace})
	}
	return out
}

// HealthCheck names an object whose readiness the Kustomization waits for.
type HealthCheck struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// KustomizationConfig is the config of a Kustomization. Path defaults to the environment's
// path. DependencyTimeout bounds how long a manual reconcile waits on DependsOn (Flux itself
// retries a dependency every RetryInterval, and each apply is bounded by Timeout).
type KustomizationConfig struct {
	SourceRef         SourceRef         `json:"sourceRef"`
	Path              string            `json:"path,omitempty"`
	Prune             *bool             `json:"prune,omitempty"`
	Interval          string            `json:"interval,omitempty"`
	RetryInterval     string            `json:"retryInterval,omitempty"`
	Timeout           string            `json:"timeout,omitempty"`
	Wait              bool              `json:"wait,omitempty"`
	Force             bool              `json:"force,omitempty"`
	TargetNamespace   string            `json:"targetNamespace,omitempty"`
	HealthChecks      []HealthCheck     `json:"healthChecks,omitempty"`
	DependsOn         []Dependency      `json:"dependsOn,omitempty"`
	DependencyTimeout string            `json:"dependencyTimeout,omitempty"`
	Substitute        map[string]string `json:"substitute,omitempty"`
	ServiceAccount    string            `json:"serviceAccountName,omitempty"`
	Components        []string          `json:"components,omitempty"`
}

// Kind implements Spec.
func (*KustomizationConfig) Kind() string { return KindKustomization }

// Dependencies implements Spec.
func (c *KustomizationConfig) Dependencies(namespace string) []Ref {
	return refsOf(KindKustomization, namespace, c.DependsOn)
}

// DependencyWait is how long a manual reconcile waits for dependencies that are not ready.
func (c *KustomizationConfig) DependencyWait() time.Duration {
	return dependencyWait(c.DependencyTimeout)
}

func dependencyWait(v string) time.Duration {
	d, err := duration("", v, time.Second, maxDependencyTimeout)
	if err != nil || d == nil {
		return DefaultDependencyTimeout
	}
	return d.Duration
}

func (c *KustomizationConfig) validate() error {
	errs := []error{c.SourceRef.validate("config.sourceRef", KindGitRepository, KindOCIRepository, KindBucket)}
	_, e := relPath("config.path", c.Path)
	errs = append(errs, e)
	_, e = interval("config.interval", c.Interval, defaultApplierInterval)
	errs = append(errs, e)
	_, e = duration("config.retryInterval", c.RetryInterval, minInterval, maxInterval)
	errs = append(errs, e)
	_, e = timeout("config.timeout", c.Timeout)
	errs = append(errs, e)
	_, e = duration("config.dependencyTimeout", c.DependencyTimeout, time.Second, maxDependencyTimeout)
	errs = append(errs, e, namespaceName("config.targetNamespace", c.TargetNamespace), validateDeps("config.dependsOn", c.DependsOn))
	for i, hc := range c.HealthChecks {
		f := "config.healthChecks[" + itoa(i) + "]"
		if hc.Kind == "" {
			errs = append(errs, fieldErr(f+".kind", "is required"))
		}
		errs = append(errs, objectName(f+".name", hc.Name), namespaceName(f+".namespace", hc.Namespace))
	}
	if c.ServiceAccount != "" {
		errs = append(errs, objectName("config.serviceAccountName", c.ServiceAccount))
	}
	return firstErr(errs...)
}

func (c *KustomizationConfig) build(t *Target) (client.Object, error) {
	p, _ := relPath("", c.Path)
	if p == "" {
		p = t.Env.Path
	}
	iv, _ := interval("", c.Interval, defaultApplierInterval)
	retry, _ := duration("", c.RetryInterval, minInterval, maxInterval)
	to, _ := timeout("", c.Timeout)
	prune := true // Flux's recommended setting; garbage is worse than an explicit opt-out
	if c.Prune != nil {
		prune = *c.Prune
	}
	obj := &kustomizev1.Kustomization{
		TypeMeta: metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		Spec: kustomizev1.KustomizationSpec{
			SourceRef: kustomizev1.CrossNamespaceSourceReference{
				Kind: c.SourceRef.Kind, Name: c.SourceRef.Name, Namespace: c.SourceRef.Namespace,
			},
			Path: p, Prune: prune, Interval: iv, RetryInterval: retry, Timeout: to, Wait: c.Wait, Force: c.Force,
			TargetNamespace: c.TargetNamespace, DependsOn: metaDeps(c.DependsOn), Suspend: t.suspendApplier(),
			ServiceAccountName: t.serviceAccount(c.ServiceAccount), Components: c.Components,
		},
	}
	for _, hc := range c.HealthChecks {
		obj.Spec.HealthChecks = append(obj.Spec.HealthChecks, meta.NamespacedObjectKindReference{
			APIVersion: hc.APIVersion, Kind: hc.Kind, Name: hc.Name, Namespace: hc.Namespace,
		})
	}
	if len(c.Substitute) > 0 {
		obj.Spec.PostBuild = &kustomizev1.PostBuild{Substitute: c.Substitute}
	}
	return obj, nil
}
