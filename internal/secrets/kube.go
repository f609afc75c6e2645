package secrets

import (
	"context"
	"errors"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxscheme"
)

// KubeStore keeps each secret as a Kubernetes Secret named by its reference, in one namespace
// of the management cluster. It writes with the same code that writes a GitRepository's
// credential Secret in a managed cluster (flux.WriteSecret: a server-side apply, so a
// rotation replaces the keys atomically and drops the ones no longer written).
type KubeStore struct {
	client    client.Client
	namespace string
}

// NewKubeStore connects a KubeStore to the cluster of kubeconfig (a path or "in-cluster"),
// storing in namespace. No request is made yet.
func NewKubeStore(kubeconfig, namespace string) (*KubeStore, error) {
	cfg, err := cluster.RESTConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	scheme, err := fluxscheme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("secret store client: %w", err)
	}
	return NewKubeStoreWithClient(c, namespace), nil
}

// NewKubeStoreWithClient returns a KubeStore on an existing client.
func NewKubeStoreWithClient(c client.Client, namespace string) *KubeStore {
	return &KubeStore{client: c, namespace: namespace}
}

// Get implements Store.
func (s *KubeStore) Get(ctx context.Context, ref string) (Data, error) {
	if err := checkRef(ref); err != nil {
		return nil, err
	}
	data, err := flux.ReadSecret(ctx, s.client, s.namespace, ref)
	if errors.Is(err, flux.ErrSecretNotFound) {
		return nil, fmt.Errorf("secret %q: %w", ref, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	return Data(data), nil
}

// Put implements Store. The namespace is created when missing.
func (s *KubeStore) Put(ctx context.Context, ref string, data Data) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	if err := flux.EnsureNamespace(ctx, s.client, s.namespace); err != nil {
		return err
	}
	return flux.WriteSecret(ctx, s.client, s.namespace, ref, data, map[string]string{"app.kubernetes.io/managed-by": flux.FieldManager})
}

// Delete implements Store.
func (s *KubeStore) Delete(ctx context.Context, ref string) error {
	if err := checkRef(ref); err != nil {
		return err
	}
	return flux.DeleteSecret(ctx, s.client, s.namespace, ref)
}
