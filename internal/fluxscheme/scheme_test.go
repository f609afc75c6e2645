package fluxscheme_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
)

func TestNewKnowsFluxKinds(t *testing.T) {
	s, err := fluxscheme.New()
	require.NoError(t, err)

	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"},
		{Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "GitRepository"},
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmRepository"},
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "OCIRepository"},
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "HelmChart"},
		{Group: "source.toolkit.fluxcd.io", Version: "v1", Kind: "Bucket"},
		{Group: "kustomize.toolkit.fluxcd.io", Version: "v1", Kind: "Kustomization"},
		{Group: "helm.toolkit.fluxcd.io", Version: "v2", Kind: "HelmRelease"},
		{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Kind: "Provider"},
		{Group: "notification.toolkit.fluxcd.io", Version: "v1beta3", Kind: "Alert"},
		{Group: "notification.toolkit.fluxcd.io", Version: "v1", Kind: "Receiver"},
		{Group: "image.toolkit.fluxcd.io", Version: "v1", Kind: "ImageRepository"},
		{Group: "image.toolkit.fluxcd.io", Version: "v1", Kind: "ImagePolicy"},
		{Group: "image.toolkit.fluxcd.io", Version: "v1", Kind: "ImageUpdateAutomation"},
	} {
		require.True(t, s.Recognizes(gvk), "scheme does not know %s", gvk)
	}
}

func TestNewReturnsFreshSchemes(t *testing.T) {
	a, err := fluxscheme.New()
	require.NoError(t, err)
	b, err := fluxscheme.New()
	require.NoError(t, err)
	require.NotSame(t, a, b)
}
