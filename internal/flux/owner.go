package flux

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The marks of an object fluxbridge owns: the managed-by label, and the resource row it belongs
// to, as a label and (what Flux copies into its events) an annotation.
const (
	LabelManagedBy       = "app.kubernetes.io/managed-by"
	ManagedByValue       = "fluxbridge"
	LabelResourceID      = "fluxbridge.io/resource-id"
	AnnotationResourceID = "event.toolkit.fluxcd.io/fluxbridge-resource-id"
	// LabelOwner marks the supporting objects of an environment (its ServiceAccount and RBAC)
	// with the owner they were made for ("<project>/<environment>").
	LabelOwner = "fluxbridge.io/owner"
)

// ForeignError is a refusal to change or delete an object fluxbridge does not own.
type ForeignError struct {
	Object string // "Kustomization flux-system/flux-system"
	Owner  string // who manages it, as far as its metadata tells
}

// Error says what was refused and who owns the object.
func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s exists and is not fluxbridge's (managed by %s): fluxbridge changes and deletes only what it made or was told to import", e.Object, e.Owner)
}

// IsForeign tells whether err is a *ForeignError.
func IsForeign(err error) bool {
	var fe *ForeignError
	return errors.As(err, &fe)
}

// Owns tells whether fluxbridge owns obj for the resource row resourceID ("" matches any row):
// it carries the managed-by label and names the row.
func Owns(obj metav1.Object, resourceID string) bool {
	if obj.GetLabels()[LabelManagedBy] != ManagedByValue {
		return false
	}
	if resourceID == "" {
		return true
	}
	return obj.GetLabels()[LabelResourceID] == resourceID || obj.GetAnnotations()[AnnotationResourceID] == resourceID
}

// OwnerOf describes who manages obj, from its labels and field managers: a Flux
// Kustomization or HelmRelease that applies it, a tool's managed-by label, fluxbridge (and
// which resource row), or the field managers that wrote its spec.
func OwnerOf(obj metav1.Object) string {
	l := obj.GetLabels()
	switch {
	case l[LabelManagedBy] == ManagedByValue:
		if id := l[LabelResourceID]; id != "" {
			return "fluxbridge resource " + id
		}
		return "fluxbridge, for no resource row"
	case l["kustomize.toolkit.fluxcd.io/name"] != "":
		return fmt.Sprintf("Kustomization %s/%s", l["kustomize.toolkit.fluxcd.io/namespace"], l["kustomize.toolkit.fluxcd.io/name"])
	case l["helm.toolkit.fluxcd.io/name"] != "":
		return fmt.Sprintf("HelmRelease %s/%s", l["helm.toolkit.fluxcd.io/namespace"], l["helm.toolkit.fluxcd.io/name"])
	case l[LabelManagedBy] != "":
		return l[LabelManagedBy]
	}
	var managers []string
	for _, m := range obj.GetManagedFields() {
		if m.Subresource == "" && !slices.Contains(managers, m.Manager) {
			managers = append(managers, m.Manager)
		}
	}
	if len(managers) > 0 {
		return "field manager " + strings.Join(managers, ", ")
	}
	return "someone else (no managed-by label)"
}

// CheckOwned reads the object ref names and returns a *ForeignError when it exists and is not
// fluxbridge's for the row resourceID. A missing object is fine: fluxbridge may create it.
func CheckOwned(ctx context.Context, c client.Client, ref Ref, resourceID string) error {
	u, err := newUnstructured(ref)
	if err != nil {
		return err
	}
	return checkOwned(ctx, c, u, ref.String(), resourceID)
}

func checkOwned(ctx context.Context, c client.Client, obj client.Object, what, resourceID string) error {
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", what, err)
	case !Owns(obj, resourceID):
		return &ForeignError{Object: what, Owner: OwnerOf(obj)}
	}
	return nil
}

// Mark stamps fluxbridge's labels and annotations on an existing object that an admin imported,
// by a server-side apply of just that metadata (as FieldManager), so that the object is
// fluxbridge's from now on and Flux puts the row into the metadata of its events. Its spec and
// the fields others manage are left as they are.
func Mark(ctx context.Context, c client.Client, ref Ref, labels, annotations map[string]string) error {
	u, err := newUnstructured(ref)
	if err != nil {
		return err
	}
	u.SetLabels(labels)
	u.SetAnnotations(annotations)
	ac := client.ApplyConfigurationFromUnstructured(u)
	if err := c.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("mark %s as fluxbridge's: %w", ref, err)
	}
	return nil
}

// Tenant is what confines an environment's appliers: a ServiceAccount that kustomize- and
// helm-controller impersonate, bound to the "admin" ClusterRole in each of the environment's
// namespaces (and to reading namespaces and patching its own, for the Namespace objects its
// Kustomization applies), and nothing else.
type Tenant struct {
	Namespace      string // where the ServiceAccount lives: the applier's namespace
	ServiceAccount string
	Namespaces     []string          // the environment's namespaces
	Labels         map[string]string // fluxbridge's labels, the owner among them
}

// EnsureTenant creates or updates the tenant's namespaces, ServiceAccount and RBAC by
// server-side apply. An object of those names that fluxbridge did not make is a *ForeignError
// and is left alone.
func EnsureTenant(ctx context.Context, c client.Client, t Tenant) error {
	for _, ns := range t.Namespaces {
		if err := EnsureNamespace(ctx, c, ns); err != nil {
			return err
		}
	}
	if err := EnsureNamespace(ctx, c, t.Namespace); err != nil {
		return err
	}
	meta := func(namespace, name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: t.Labels}
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: t.ServiceAccount, Namespace: t.Namespace}}
	objs := []client.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta(t.Namespace, t.ServiceAccount)},
	}
	for _, ns := range t.Namespaces {
		objs = append(objs, &rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "RoleBinding"},
			ObjectMeta: meta(ns, t.ServiceAccount),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
			Subjects:   subject,
		})
	}
	cluster := t.ServiceAccount + "-" + t.Namespace
	objs = append(objs,
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRole"},
			ObjectMeta: meta("", cluster),
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"patch", "update"}, ResourceNames: t.Namespaces},
			},
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: rbacv1.SchemeGroupVersion.String(), Kind: "ClusterRoleBinding"},
			ObjectMeta: meta("", cluster),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cluster},
			Subjects:   subject,
		})
	for _, o := range objs {
		what := fmt.Sprintf("%s %s", o.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(o))
		probe := o.DeepCopyObject().(client.Object)
		if err := checkOwned(ctx, c, probe, what, ""); err != nil {
			return err
		}
		if _, err := Apply(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

// CheckSecretOwned is CheckOwned for the Secret namespace/name.
func CheckSecretOwned(ctx context.Context, c client.Client, namespace, name, resourceID string) error {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	return checkOwned(ctx, c, s, fmt.Sprintf("Secret %s/%s", namespace, name), resourceID)
}
