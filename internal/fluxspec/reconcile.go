package fluxspec

import "time"

// DefaultReconcileTimeout is how long a manual reconcile waits for Flux's verdict on an object
// whose config sets no timeout.
const DefaultReconcileTimeout = 5 * time.Minute

// ReconcileTimeout is how long a manual reconcile of spec waits for Flux's verdict: the
// object's own timeout plus a minute for the controller to pick the request up, or
// DefaultReconcileTimeout.
func ReconcileTimeout(spec Spec) time.Duration {
	var v string
	switch c := spec.(type) {
	case *KustomizationConfig:
		v = c.Timeout
	case *HelmReleaseConfig:
		v = c.Timeout
	case *GitRepositoryConfig:
		v = c.Timeout
	}
	if d, err := timeout("", v); err == nil && d != nil {
		return max(d.Duration+time.Minute, DefaultReconcileTimeout)
	}
	return DefaultReconcileTimeout
}

// DependencyWait is how long a manual reconcile of spec may wait on dependencies that are not
// ready (R16.5) before it reports a timeout; zero for kinds without dependsOn.
func DependencyWait(spec Spec) time.Duration {
	switch c := spec.(type) {
	case *KustomizationConfig:
		return c.DependencyWait()
	case *HelmReleaseConfig:
		return c.DependencyWait()
	}
	return 0
}

// SourceOf returns the source `flux reconcile --with-source` reconciles first for the object
// namespace/name with spec: a Kustomization's sourceRef, the HelmChart helm-controller makes
// for a HelmRelease's chart template ("<namespace>-<name>" in the source's namespace), or a
// HelmRelease's chartRef. ok is false for kinds without a source.
func SourceOf(spec Spec, namespace, name string) (ref Ref, ok bool) {
	orDefault := defaultNamespace(namespace)
	switch c := spec.(type) {
	case *KustomizationConfig:
		return Ref{Kind: c.SourceRef.Kind, Namespace: orDefault(c.SourceRef.Namespace), Name: c.SourceRef.Name}, true
	case *HelmReleaseConfig:
		if c.ChartRef != nil {
			return Ref{Kind: c.ChartRef.Kind, Namespace: orDefault(c.ChartRef.Namespace), Name: c.ChartRef.Name}, true
		}
		if c.Chart != nil {
			return Ref{Kind: KindHelmChart, Namespace: orDefault(c.Chart.SourceRef.Namespace), Name: namespace + "-" + name}, true
		}
	case *HelmChartConfig:
		return Ref{Kind: c.SourceRef.Kind, Namespace: namespace, Name: c.SourceRef.Name}, true
	case *ImageUpdateAutomationConfig:
		return Ref{Kind: KindGitRepository, Namespace: namespace, Name: c.SourceRef}, true
	case *ImagePolicyConfig:
		return Ref{Kind: KindImageRepository, Namespace: namespace, Name: c.ImageRepository}, true
	}
	return Ref{}, false
}

// Reads lists the objects the object namespace/name with spec reads from, in its cluster: a
// Kustomization's source, a HelmRelease's chart source (its HelmRepository, GitRepository or
// Bucket) or chartRef, a HelmChart's source, an ImagePolicy's ImageRepository, and the
// GitRepository an ImageUpdateAutomation writes to. A change of any of them changes what the
// object does, so the approvals that gate the object gate them too.
func Reads(spec Spec, namespace string) []Ref {
	orDefault := defaultNamespace(namespace)
	switch c := spec.(type) {
	case *KustomizationConfig:
		return []Ref{{Kind: c.SourceRef.Kind, Namespace: orDefault(c.SourceRef.Namespace), Name: c.SourceRef.Name}}
	case *HelmReleaseConfig:
		if c.ChartRef != nil {
			return []Ref{{Kind: c.ChartRef.Kind, Namespace: orDefault(c.ChartRef.Namespace), Name: c.ChartRef.Name}}
		}
		if c.Chart != nil {
			s := c.Chart.SourceRef
			return []Ref{{Kind: s.Kind, Namespace: orDefault(s.Namespace), Name: s.Name}}
		}
	case *HelmChartConfig:
		return []Ref{{Kind: c.SourceRef.Kind, Namespace: namespace, Name: c.SourceRef.Name}}
	case *ImagePolicyConfig:
		return []Ref{{Kind: KindImageRepository, Namespace: namespace, Name: c.ImageRepository}}
	case *ImageUpdateAutomationConfig:
		return []Ref{{Kind: KindGitRepository, Namespace: namespace, Name: c.SourceRef}}
	}
	return nil
}

// defaultNamespace returns a function giving a reference's namespace, def when it names none.
func defaultNamespace(def string) func(string) string {
	return func(ns string) string {
		if ns == "" {
			return def
		}
		return ns
	}
}
