package manifest

import (
	"strings"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FluxConfig is what fluxbridge proposes for the Flux Kustomization that applies an
// environment's directory: it is stored as the gitops_resources row's config, and the
// Kubernetes integration creates the object from it.
type FluxConfig struct {
	// Path is the directory in the source, "./"-prefixed as Flux writes it.
	Path string `json:"path"`
	// SourceRef names the GitRepository the path is read from.
	SourceRef SourceRef `json:"sourceRef"`
	// Interval is how often Flux re-applies the path even without a new commit.
	Interval string `json:"interval"`
	// RetryInterval is how soon Flux retries after a failed apply.
	RetryInterval string `json:"retryInterval"`
	// Timeout bounds one apply including health checks.
	Timeout string `json:"timeout"`
	// Wait makes Flux health-check every object it applies (Deployments rolled out, Jobs
	// complete) before it reports Ready; this is the health check of every app in the path.
	Wait bool `json:"wait"`
	// Prune deletes objects removed from Git, so deleting an app's directory undeploys it.
	Prune bool `json:"prune"`
}

// SourceRef names a Flux source object.
type SourceRef struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// Flux defaults proposed for every template: wait for health, give a rollout time to finish
// (a Deployment's progress deadline is 10 minutes; Flux reports failure well before), retry a
// failed apply after a minute, and re-apply every ten minutes to undo drift.
const (
	fluxInterval      = 10 * time.Minute
	fluxRetryInterval = time.Minute
	fluxTimeout       = 5 * time.Minute
)

// ProposeFluxConfig returns the Kustomization settings fluxbridge proposes for a directory
// (relative to the repository root) read from the GitRepository source.
func ProposeFluxConfig(dir string, source SourceRef) FluxConfig {
	return FluxConfig{
		Path:          "./" + strings.TrimPrefix(dir, "./"),
		SourceRef:     source,
		Interval:      fluxInterval.String(),
		RetryInterval: fluxRetryInterval.String(),
		Timeout:       fluxTimeout.String(),
		Wait:          true,
		Prune:         true,
	}
}

// RenderKustomization renders c as a kustomize.toolkit.fluxcd.io/v1 Kustomization named
// name in namespace, for showing in a preview. Durations that do not parse are left out.
func RenderKustomization(name, namespace string, c FluxConfig) ([]byte, error) {
	dur := func(s string) *metav1.Duration {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil
		}
		return &metav1.Duration{Duration: d}
	}
	k := &kustomizev1.Kustomization{
		TypeMeta:   metav1.TypeMeta{APIVersion: kustomizev1.GroupVersion.String(), Kind: kustomizev1.KustomizationKind},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": managedBy}},
		Spec: kustomizev1.KustomizationSpec{
			Path:          c.Path,
			SourceRef:     kustomizev1.CrossNamespaceSourceReference{Kind: c.SourceRef.Kind, Name: c.SourceRef.Name, Namespace: c.SourceRef.Namespace},
			Prune:         c.Prune,
			Wait:          c.Wait,
			RetryInterval: dur(c.RetryInterval),
			Timeout:       dur(c.Timeout),
		},
	}
	if d := dur(c.Interval); d != nil {
		k.Spec.Interval = *d
	}
	return toYAML(k)
}
