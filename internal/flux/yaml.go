package flux

import (
	"bytes"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// LiveYAML renders a live object as `kubectl get -o yaml` would, without metadata.managedFields
// (noise to a reader; fluxbridge's own field ownership is not what a person wants to see).
func LiveYAML(u *unstructured.Unstructured) ([]byte, error) {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	b, err := yaml.Marshal(c.Object)
	if err != nil {
		return nil, fmt.Errorf("render %s %s/%s as yaml: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return b, nil
}

// exportDropAnnotations are annotations `flux export` leaves out: client bookkeeping and
// one-off reconcile requests.
var exportDropAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"reconcile.fluxcd.io/requestedAt", "reconcile.fluxcd.io/forceAt", "reconcile.fluxcd.io/resetAt",
}

// Export returns the object as `flux export` prints it: apiVersion, kind, metadata (name,
// namespace, labels, annotations) and spec, nothing the server or controller added.
func Export(u *unstructured.Unstructured) *unstructured.Unstructured {
	out := &unstructured.Unstructured{Object: map[string]any{}}
	out.SetAPIVersion(u.GetAPIVersion())
	out.SetKind(u.GetKind())
	out.SetName(u.GetName())
	out.SetNamespace(u.GetNamespace())
	if l := u.GetLabels(); len(l) > 0 {
		out.SetLabels(l)
	}
	if a := u.GetAnnotations(); len(a) > 0 {
		for _, k := range exportDropAnnotations {
			delete(a, k)
		}
		if len(a) > 0 {
			out.SetAnnotations(a)
		}
	}
	if spec, ok := u.Object["spec"]; ok {
		out.Object["spec"] = spec
	}
	return out
}

// ExportYAML renders objects as one multi-document YAML stream, each preceded by "---", as
// `flux export` does.
func ExportYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, u := range objs {
		b, err := yaml.Marshal(Export(u).Object)
		if err != nil {
			return nil, fmt.Errorf("export %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
