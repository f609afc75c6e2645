package manifest

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// NamespacesDir is the directory, in an environment's directory, that holds a Namespace file
// for each namespace the environment's apps run in. Flux creates no namespace on its own; with
// these files in the path it applies, it creates them before the apps (Namespaces go first).
//
// The directory has no kustomization.yaml, so when the environment's directory has none either
// (fluxbridge's layout), kustomize-controller's generated kustomization.yaml lists every file
// in it, next to every app directory (each has its own kustomization.yaml). An environment
// directory with a hand-written kustomization.yaml is built as written: it lists the apps'
// directories and these files itself. No app may be named after it.
const NamespacesDir = "namespaces"

// pruneAnnotation and pruneDisabled keep Flux from ever deleting a Namespace it applied: a
// Namespace's deletion takes every object in it along, so neither removing the file nor
// deleting the Kustomization may do it.
const (
	pruneAnnotation = "kustomize.toolkit.fluxcd.io/prune"
	pruneDisabled   = "disabled"
)

// NamespacePath is the file of namespace ns under the environment's directory envDir ("" for
// the repository root).
func NamespacePath(envDir, ns string) string {
	return path.Join(envDir, NamespacesDir, ns+".yaml")
}

// RenderNamespace renders the Namespace object of ns. The bytes depend on ns alone, so every
// app of the namespace writes the same file and rewriting it changes nothing.
func RenderNamespace(ns string) ([]byte, error) {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return nil, fieldErr("namespace", "%q is not a DNS label", ns)
	}
	obj := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        ns,
			Labels:      map[string]string{"app.kubernetes.io/managed-by": managedBy},
			Annotations: map[string]string{pruneAnnotation: pruneDisabled},
		},
	}
	b, err := toYAML(obj)
	if err != nil {
		return nil, fmt.Errorf("render namespace %s: %w", ns, err)
	}
	return b, nil
}
