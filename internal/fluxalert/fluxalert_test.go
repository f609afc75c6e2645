package fluxalert

import (
	"fmt"
	"testing"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

func wiring() Wiring {
	return Wiring{
		Cluster: "dev-eu", Namespace: "flux-system", ReceiverURL: "https://fluxbridge.example.com/", Token: "0123456789abcdef-token",
		Groups: []Group{
			{Project: "webapp", Environment: "dev", Sources: []Source{
				{Kind: "Kustomization", Namespace: "flux-system", Name: "webapp-dev"},
				{Kind: "HelmRelease", Namespace: "webapp", Name: "podinfo"},
				{Kind: "Kustomization", Namespace: "flux-system", Name: "webapp-dev"}, // twice
			}},
			{Project: "webapp", Sources: []Source{{Kind: "GitRepository", Namespace: "flux-system", Name: "fleet"}}},
			{Project: "empty", Environment: "dev"},
		},
	}
}

func TestObjects(t *testing.T) {
	objs, err := Objects(wiring())
	require.NoError(t, err)
	require.Len(t, objs, 4, "secret, provider, two alerts; none for the empty group")

	s := objs[0].(*corev1.Secret)
	require.Equal(t, "flux-system", s.Namespace)
	require.Equal(t, SecretName, s.Name)
	require.Equal(t, "0123456789abcdef-token", string(s.Data["token"]))

	p := objs[1].(*notificationv1beta3.Provider)
	require.Equal(t, "generic-hmac", p.Spec.Type)
	require.Equal(t, "https://fluxbridge.example.com/hooks/flux/dev-eu", p.Spec.Address)
	require.Equal(t, SecretName, p.Spec.SecretRef.Name)
	require.Equal(t, "fluxbridge", p.Labels[LabelManagedBy])

	shared := objs[2].(*notificationv1beta3.Alert)
	require.Equal(t, "fluxbridge-webapp", shared.Name)
	require.Equal(t, map[string]string{"cluster": "dev-eu", "project": "webapp"}, shared.Spec.EventMetadata)
	require.Len(t, shared.Spec.EventSources, 1)

	dev := objs[3].(*notificationv1beta3.Alert)
	require.Equal(t, "fluxbridge-webapp-dev", dev.Name)
	require.Equal(t, "flux-system", dev.Namespace)
	require.Equal(t, ProviderName, dev.Spec.ProviderRef.Name)
	require.Equal(t, "info", dev.Spec.EventSeverity)
	require.Equal(t, map[string]string{"cluster": "dev-eu", "project": "webapp", "environment": "dev"}, dev.Spec.EventMetadata)
	require.Len(t, dev.Spec.EventSources, 2, "sorted, without duplicates")
	require.Equal(t, "HelmRelease", dev.Spec.EventSources[0].Kind)
	require.Equal(t, "webapp", dev.Spec.EventSources[0].Namespace)
	require.Equal(t, "webapp-dev", dev.Spec.EventSources[1].Name)
	require.Equal(t, ComponentValue, dev.Labels[LabelComponent])
}

func TestObjectsSplitsLongGroups(t *testing.T) {
	w := wiring()
	w.Groups = []Group{{Project: "big", Environment: "prod"}}
	for i := range maxSources + 5 {
		w.Groups[0].Sources = append(w.Groups[0].Sources, Source{Kind: "Kustomization", Namespace: "flux-system", Name: fmt.Sprintf("k%03d", i)})
	}
	objs, err := Objects(w)
	require.NoError(t, err)
	require.Len(t, objs, 4)
	require.Equal(t, "fluxbridge-big-prod", objs[2].GetName())
	require.Len(t, objs[2].(*notificationv1beta3.Alert).Spec.EventSources, maxSources)
	require.Equal(t, "fluxbridge-big-prod-2", objs[3].GetName())
	require.Len(t, objs[3].(*notificationv1beta3.Alert).Spec.EventSources, 5)
}

func TestObjectsErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Wiring){
		"no receiver URL":    func(w *Wiring) { w.ReceiverURL = "" },
		"relative URL":       func(w *Wiring) { w.ReceiverURL = "fluxbridge:8080" },
		"other scheme":       func(w *Wiring) { w.ReceiverURL = "ftp://fluxbridge" },
		"short token":        func(w *Wiring) { w.Token = "short" },
		"bad namespace name": func(w *Wiring) { w.Namespace = "Flux_System" },
	} {
		t.Run(name, func(t *testing.T) {
			w := wiring()
			mutate(&w)
			_, err := Objects(w)
			require.Error(t, err)
		})
	}
	w := wiring()
	w.ReceiverURL = "http://10.0.0.5:8080/fluxbridge"
	addr, err := w.Address()
	require.NoError(t, err)
	require.Equal(t, "http://10.0.0.5:8080/fluxbridge/hooks/flux/dev-eu", addr)
}
