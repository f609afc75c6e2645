// Package flux talks to the Flux objects of one cluster through a controller-runtime client:
// server-side apply and delete, `flux reconcile`, `flux suspend` and `flux resume` semantics,
// reading an object's state the way `flux get` and kstatus do, the Git credential Secrets Flux
// reads, and YAML views (`kubectl get -o yaml` without managedFields, and `flux export`).
//
// It knows nothing about jobs or the database; callers pass plain values.
package flux

import (
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imageautov1 "github.com/fluxcd/image-automation-controller/api/v1"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FieldManager is the server-side apply field manager of every change fluxbridge makes.
const FieldManager = "fluxbridge"

// gvks maps each managed kind to the API version the pinned Flux CRDs store.
var gvks = map[string]schema.GroupVersionKind{
	sourcev1.GitRepositoryKind:            sourcev1.GroupVersion.WithKind(sourcev1.GitRepositoryKind),
	sourcev1.OCIRepositoryKind:            sourcev1.GroupVersion.WithKind(sourcev1.OCIRepositoryKind),
	sourcev1.HelmRepositoryKind:           sourcev1.GroupVersion.WithKind(sourcev1.HelmRepositoryKind),
	sourcev1.HelmChartKind:                sourcev1.GroupVersion.WithKind(sourcev1.HelmChartKind),
	sourcev1.BucketKind:                   sourcev1.GroupVersion.WithKind(sourcev1.BucketKind),
	kustomizev1.KustomizationKind:         kustomizev1.GroupVersion.WithKind(kustomizev1.KustomizationKind),
	helmv2.HelmReleaseKind:                helmv2.GroupVersion.WithKind(helmv2.HelmReleaseKind),
	imagev1.ImageRepositoryKind:           imagev1.GroupVersion.WithKind(imagev1.ImageRepositoryKind),
	imagev1.ImagePolicyKind:               imagev1.GroupVersion.WithKind(imagev1.ImagePolicyKind),
	imageautov1.ImageUpdateAutomationKind: imageautov1.GroupVersion.WithKind(imageautov1.ImageUpdateAutomationKind),
}

// GVK returns the group, version and kind of a managed Flux kind.
func GVK(kind string) (schema.GroupVersionKind, error) {
	gvk, ok := gvks[kind]
	if !ok {
		return schema.GroupVersionKind{}, fmt.Errorf("%q is not a Flux kind fluxbridge manages", kind)
	}
	return gvk, nil
}

// GVKs returns every managed kind's GVK.
func GVKs() []schema.GroupVersionKind {
	out := make([]schema.GroupVersionKind, 0, len(gvks))
	for _, g := range gvks {
		out = append(out, g)
	}
	return out
}

// Ref names a Flux object in a cluster.
type Ref struct {
	Kind, Namespace, Name string
}

// String names the object as "Kind namespace/name".
func (r Ref) String() string { return r.Kind + " " + r.Namespace + "/" + r.Name }

// newUnstructured returns an empty object of ref's kind, named by ref.
func newUnstructured(ref Ref) (*unstructured.Unstructured, error) {
	gvk, err := GVK(ref.Kind)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ref.Namespace)
	u.SetName(ref.Name)
	return u, nil
}
