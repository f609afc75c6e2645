// Package fluxscheme builds the runtime.Scheme fluxbridge talks to clusters
// with: the built-in Kubernetes kinds plus every Flux kind at the API version
// the pinned Flux CRDs store.
package fluxscheme

import (
	"fmt"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	imageautov1 "github.com/fluxcd/image-automation-controller/api/v1"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

// groups lists what AddToScheme registers, in order.
var groups = []struct {
	name string
	add  func(*runtime.Scheme) error
}{
	{"kubernetes built-in kinds", clientgoscheme.AddToScheme},
	{sourcev1.GroupVersion.String(), sourcev1.AddToScheme},
	{kustomizev1.GroupVersion.String(), kustomizev1.AddToScheme},
	{helmv2.GroupVersion.String(), helmv2.AddToScheme},
	{notificationv1.GroupVersion.String(), notificationv1.AddToScheme},           // Receiver
	{notificationv1beta3.GroupVersion.String(), notificationv1beta3.AddToScheme}, // Provider, Alert
	{imagev1.GroupVersion.String() + " (reflector)", imagev1.AddToScheme},        // ImageRepository, ImagePolicy
	{imageautov1.GroupVersion.String() + " (automation)", imageautov1.AddToScheme},
}

// AddToScheme registers the built-in Kubernetes kinds and the Flux kinds in
// s: source v1 (GitRepository, HelmRepository, OCIRepository, HelmChart,
// Bucket, ExternalArtifact), kustomize v1 (Kustomization), helm v2
// (HelmRelease), notification v1beta3 (Provider, Alert) and v1 (Receiver),
// and image v1 (ImageRepository, ImagePolicy, ImageUpdateAutomation).
//
// These are the versions the CRDs fluxbridge is tested with serve as their
// storage version. It fails only if s already maps one of those kinds to a
// different Go type.
func AddToScheme(s *runtime.Scheme) error {
	for _, g := range groups {
		if err := g.add(s); err != nil {
			return fmt.Errorf("add %s to scheme: %w", g.name, err)
		}
	}
	return nil
}

// New returns a new scheme holding the kinds AddToScheme registers. Each
// call builds a fresh scheme, so callers may add their own kinds to it.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}
