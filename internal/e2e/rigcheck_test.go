package e2e

import (
	"context"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestRigCheck(t *testing.T) {
	ctx := context.Background()
	c := rig.Env.Client
	rig.Git.initRepo(t, "rigcheck")
	w := rig.Git.clone(t, "rigcheck")
	w.write(t, "deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rigcheck\n  namespace: default\ndata:\n  a: b\n")
	sha := w.commitAndPush(t, "add cm")

	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck-auth"},
		Data: map[string][]byte{"username": []byte(gitUser), "password": []byte(gitPass), "ca.crt": rig.Git.caPEM}}))
	require.NoError(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck-hook"},
		Data: map[string][]byte{"token": []byte(webhookToken)}}))
	require.NoError(t, c.Create(ctx, &notificationv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck"},
		Spec: notificationv1beta3.ProviderSpec{Type: "generic-hmac", Address: rig.App.url + "/hooks/flux/" + clusterName, SecretRef: &meta.LocalObjectReference{Name: "rigcheck-hook"}}}))
	require.NoError(t, c.Create(ctx, &notificationv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck"},
		Spec: notificationv1beta3.AlertSpec{ProviderRef: meta.LocalObjectReference{Name: "rigcheck"}, EventSeverity: "info",
			EventSources:  []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "rigcheck"}, {Kind: "Kustomization", Name: "rigcheck"}},
			EventMetadata: map[string]string{"cluster": clusterName}}}))
	require.NoError(t, c.Create(ctx, &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck"},
		Spec: sourcev1.GitRepositorySpec{URL: rig.Git.url("rigcheck"), Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"}, SecretRef: &meta.LocalObjectReference{Name: "rigcheck-auth"}}}))
	require.NoError(t, c.Create(ctx, &kustomizev1.Kustomization{ObjectMeta: metav1.ObjectMeta{Namespace: fluxNamespace, Name: "rigcheck"},
		Spec: kustomizev1.KustomizationSpec{Path: "./deploy", Interval: metav1.Duration{Duration: time.Minute}, Prune: true,
			SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "rigcheck"}}}))
	start := time.Now()
	require.Eventually(t, func() bool {
		var cm corev1.ConfigMap
		return c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "rigcheck"}, &cm) == nil
	}, time.Minute, 100*time.Millisecond)
	t.Logf("configmap applied after %s", time.Since(start))
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, rig.App.pool.QueryRow(ctx, `SELECT count(*) FROM flux_events WHERE kind = 'Kustomization' AND name = 'rigcheck' AND revision LIKE '%'||$1`, sha).Scan(&n))
		return n > 0
	}, 30*time.Second, 100*time.Millisecond)
	t.Logf("event stored after %s; relay got %d events, delivered %d", time.Since(start), rig.Relay.Received(), len(rig.Relay.Deliveries()))
}
