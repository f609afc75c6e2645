// Package fluxalert builds the notification-controller objects that make a cluster's Flux
// report to fluxbridge (R14.1): a Secret holding the cluster's webhook token, a generic-hmac
// Provider addressed at fluxbridge's receiver (/hooks/flux/<cluster>), and one Alert per
// project environment (and one per project for its shared sources) covering exactly the Flux
// objects fluxbridge manages there, with eventMetadata naming the cluster, project and
// environment. It is pure: the worker applies what it returns.
package fluxalert

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	notificationv1 "github.com/fluxcd/notification-controller/api/v1"
	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names, labels and metadata keys of the objects.
const (
	// ProviderName is the Provider (and SecretName its Secret) in the cluster's Flux namespace.
	ProviderName = "fluxbridge"
	SecretName   = "fluxbridge-webhook"
	// LabelManagedBy and LabelComponent mark the objects, so that stale Alerts can be found
	// and pruned.
	LabelManagedBy  = "app.kubernetes.io/managed-by"
	ManagedByValue  = "fluxbridge"
	LabelComponent  = "fluxbridge.io/component"
	ComponentValue  = "alerting"
	alertNamePrefix = "fluxbridge-"
	// Event metadata keys the Alerts add; fluxbridge's receiver reads them.
	MetaCluster     = "cluster"
	MetaProject     = "project"
	MetaEnvironment = "environment"
	// hookPath is the receiver's route; the cluster name follows.
	hookPath = "/hooks/flux/"
	// maxSources bounds one Alert's eventSources; a group with more objects gets several
	// Alerts, numbered.
	maxSources = 200
)

// Wiring is what a cluster's alerting needs.
type Wiring struct {
	// Cluster is fluxbridge's name for the cluster: the last path element of the address.
	Cluster string
	// Namespace is the cluster's Flux namespace, where the objects go.
	Namespace string
	// ReceiverURL is the base URL at which the cluster reaches fluxbridge's receiver.
	ReceiverURL string
	// Token is the cluster's webhook token, the HMAC key of the Provider.
	Token string
	// Groups are the Flux objects to report about, by project and environment.
	Groups []Group
}

// Group is the Flux objects of one project environment, or of a project's shared sources
// (Environment "").
type Group struct {
	Project     string
	Environment string
	Sources     []Source
}

// Source is one Flux object.
type Source struct {
	Kind, Namespace, Name string
}

// Address returns the Provider's address for w.
func (w Wiring) Address() (string, error) {
	u, err := url.Parse(w.ReceiverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("receiver URL %q: want http(s)://host[:port][/path]", w.ReceiverURL)
	}
	return strings.TrimSuffix(u.String(), "/") + hookPath + url.PathEscape(w.Cluster), nil
}

// AlertName returns the name of the (first) Alert of a group.
func AlertName(project, environment string) string {
	n := alertNamePrefix + project
	if environment != "" {
		n += "-" + environment
	}
	return n
}

// Objects returns the Secret, the Provider and the Alerts for w, in that order. Groups
// without sources get no Alert.
func Objects(w Wiring) ([]client.Object, error) {
	addr, err := w.Address()
	if err != nil {
		return nil, err
	}
	var errs []error
	if len(w.Token) < 16 {
		errs = append(errs, errors.New("webhook token: want at least 16 bytes"))
	}
	if msgs := validation.IsDNS1123Label(w.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", w.Namespace, strings.Join(msgs, "; ")))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	objs := []client.Object{
		&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: w.meta(SecretName),
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"token": []byte(w.Token)},
		},
		&notificationv1beta3.Provider{
			TypeMeta:   metav1.TypeMeta{APIVersion: notificationv1beta3.GroupVersion.String(), Kind: notificationv1beta3.ProviderKind},
			ObjectMeta: w.meta(ProviderName),
			Spec: notificationv1beta3.ProviderSpec{
				Type: notificationv1beta3.GenericHMACProvider, Address: addr,
				SecretRef: &meta.LocalObjectReference{Name: SecretName},
			},
		},
	}
	groups := slices.Clone(w.Groups)
	slices.SortFunc(groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Environment, b.Environment))
	})
	for _, g := range groups {
		objs = append(objs, w.alerts(g)...)
	}
	return objs, nil
}

// alerts returns the Alerts of one group: its sources, sorted and without duplicates, at most
// maxSources per Alert.
func (w Wiring) alerts(g Group) []client.Object {
	srcs := slices.Clone(g.Sources)
	slices.SortFunc(srcs, func(a, b Source) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	srcs = slices.Compact(srcs)
	md := map[string]string{MetaCluster: w.Cluster, MetaProject: g.Project}
	if g.Environment != "" {
		md[MetaEnvironment] = g.Environment
	}
	var out []client.Object
	for i := 0; i < len(srcs); i += maxSources {
		name := AlertName(g.Project, g.Environment)
		if i > 0 {
			name = fmt.Sprintf("%s-%d", name, i/maxSources+1)
		}
		a := &notificationv1beta3.Alert{
			TypeMeta:   metav1.TypeMeta{APIVersion: notificationv1beta3.GroupVersion.String(), Kind: notificationv1beta3.AlertKind},
			ObjectMeta: w.meta(name),
			Spec: notificationv1beta3.AlertSpec{
				ProviderRef:   meta.LocalObjectReference{Name: ProviderName},
				EventSeverity: "info", // every event: fluxbridge records successes as well as failures
				EventMetadata: md,
			},
		}
		for _, s := range srcs[i:min(i+maxSources, len(srcs))] {
			a.Spec.EventSources = append(a.Spec.EventSources, notificationv1.CrossNamespaceObjectReference{
				Kind: s.Kind, Namespace: s.Namespace, Name: s.Name,
			})
		}
		out = append(out, a)
	}
	return out
}

func (w Wiring) meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: w.Namespace,
		Labels: map[string]string{LabelManagedBy: ManagedByValue, LabelComponent: ComponentValue},
	}
}
