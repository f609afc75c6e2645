package flux

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Applied is what the apiserver answered to a server-side apply.
type Applied struct {
	UID        string
	Generation int64
}

// Apply creates or updates obj with server-side apply as FieldManager. Ownership of the fields
// fluxbridge sets is forced (its settings win over a kubectl edit); fields other managers own
// and fluxbridge does not set are left alone, and fields fluxbridge stops setting are removed.
// The status and creationTimestamp are never sent.
func Apply(ctx context.Context, c client.Client, obj client.Object) (Applied, error) {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return Applied{}, fmt.Errorf("apply: %w", err)
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return Applied{}, fmt.Errorf("apply %s: %w", gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := c.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return Applied{}, fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return Applied{UID: string(u.GetUID()), Generation: u.GetGeneration()}, nil
}

// EnsureNamespace creates namespace ns if it does not exist, so that the first object of a
// namespace can be applied. A namespace it creates is labelled as fluxbridge's and annotated so
// that Flux never prunes it (as the Namespace files of deploys are); an existing one is left
// exactly as it is.
func EnsureNamespace(ctx context.Context, c client.Client, ns string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Namespace")
	u.SetName(ns)
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, u.DeepCopy()); err == nil {
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	u.SetLabels(map[string]string{LabelManagedBy: ManagedByValue})
	u.SetAnnotations(map[string]string{"kustomize.toolkit.fluxcd.io/prune": "disabled"})
	if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// Delete deletes the object ref names (in the background, letting Flux's finalizers run) and
// reports whether it is gone. An object that is already gone is not an error; one that is
// still terminating (finalizers pending) returns gone=false and should be checked again.
func Delete(ctx context.Context, c client.Client, ref Ref) (gone bool, err error) {
	u, err := newUnstructured(ref)
	if err != nil {
		return false, err
	}
	err = c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground))
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("delete %s: %w", ref, err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), u); apierrors.IsNotFound(err) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("get %s after delete: %w", ref, err)
	}
	return false, nil
}

// Get reads the live object ref names.
func Get(ctx context.Context, c client.Client, ref Ref) (*unstructured.Unstructured, error) {
	u, err := newUnstructured(ref)
	if err != nil {
		return nil, err
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(u), u); err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	return u, nil
}
