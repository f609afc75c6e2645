// Package cluster holds fluxbridge's connections to the Kubernetes clusters it manages: one
// controller-runtime client per cluster (typed, with the Flux scheme), built from a kubeconfig
// file or the in-cluster service account, and a cached reachability probe for the API.
//
// Clients are lazy: building the registry contacts no cluster, so a process starts even when a
// cluster is down, and each request reports the failure instead.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// InCluster is the kubeconfig value that means "the service account of the pod I run in".
const InCluster = "in-cluster"

// Client limits and probe timings.
const (
	clientQPS   = 50
	clientBurst = 100
	// ClientTimeout bounds one request of a cluster's Client.
	ClientTimeout = 15 * time.Second
	// ProbeTimeout bounds one reachability probe (a GET /version).
	ProbeTimeout = 3 * time.Second
	// ProbeTTL is how long a probe result is reused, so that listing clusters is cheap.
	ProbeTTL = 10 * time.Second
)

// Errors of Get.
var (
	ErrUnknown      = errors.New("unknown cluster")
	ErrNoKubeconfig = errors.New("cluster has no kubeconfig (webhook only)")
)

// Spec is how to reach one cluster: the plain values of its config entry.
type Spec struct {
	Name string
	// Kubeconfig is a kubeconfig path, InCluster, or "" for a webhook-only cluster.
	Kubeconfig    string
	FluxNamespace string
}

// Cluster is one reachable-by-config cluster.
type Cluster struct {
	Name          string
	FluxNamespace string
	// Config is the REST config, for informers and discovery.
	Config *rest.Config
	// Client reads and writes the built-in and Flux kinds.
	Client client.Client
	Scheme *runtime.Scheme
}

// Status is what GET /clusters shows about a cluster.
type Status struct {
	Name          string    `json:"name"`
	FluxNamespace string    `json:"flux_namespace"`
	Managed       bool      `json:"managed"` // has a kubeconfig; false for webhook-only clusters
	Reachable     bool      `json:"reachable"`
	Version       string    `json:"version,omitempty"`
	Error         string    `json:"error,omitempty"`
	CheckedAt     time.Time `json:"checked_at,omitzero"`
}

// Registry holds the clusters of the config file.
type Registry struct {
	specs    []Spec
	clusters map[string]*Cluster

	mu     sync.Mutex
	probes map[string]Status
}

// NewRegistry builds a client for every spec that has a kubeconfig. It fails when a
// kubeconfig cannot be read, not when a cluster is down.
func NewRegistry(specs []Spec, scheme *runtime.Scheme) (*Registry, error) {
	r := &Registry{specs: slices.Clone(specs), clusters: map[string]*Cluster{}, probes: map[string]Status{}}
	for _, s := range specs {
		if s.Kubeconfig == "" {
			continue
		}
		cfg, err := RESTConfig(s.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", s.Name, err)
		}
		// The client's one-shot calls (and the discovery its REST mapper runs, which takes no
		// context) end within ClientTimeout even against an apiserver that never answers; the
		// watch's long-running requests use Config, which has no such bound.
		ccfg := rest.CopyConfig(cfg)
		ccfg.Timeout = ClientTimeout
		c, err := client.New(ccfg, client.Options{Scheme: scheme})
		if err != nil {
			return nil, fmt.Errorf("cluster %s: client: %w", s.Name, err)
		}
		r.clusters[s.Name] = &Cluster{Name: s.Name, FluxNamespace: s.FluxNamespace, Config: cfg, Client: c, Scheme: scheme}
	}
	return r, nil
}

// RESTConfig loads a client configuration from a kubeconfig path or InCluster.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == InCluster {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = clientQPS, clientBurst
	cfg.UserAgent = "fluxbridge"
	return cfg, nil
}

// Get returns the named cluster's clients.
func (r *Registry) Get(name string) (*Cluster, error) {
	if c, ok := r.clusters[name]; ok {
		return c, nil
	}
	for _, s := range r.specs {
		if s.Name == name {
			return nil, fmt.Errorf("%s: %w", name, ErrNoKubeconfig)
		}
	}
	return nil, fmt.Errorf("%s: %w", name, ErrUnknown)
}

// FluxNamespace is where the named cluster's Flux runs (default flux-system), managed or
// webhook only.
func (r *Registry) FluxNamespace(name string) string {
	for _, s := range r.specs {
		if s.Name == name && s.FluxNamespace != "" {
			return s.FluxNamespace
		}
	}
	return "flux-system"
}

// Managed returns the clusters that have clients, in config order.
func (r *Registry) Managed() []*Cluster {
	var out []*Cluster
	for _, s := range r.specs {
		if c, ok := r.clusters[s.Name]; ok {
			out = append(out, c)
		}
	}
	return out
}

// Known tells whether name is a cluster of the config file (managed or webhook only).
func (r *Registry) Known(name string) bool {
	return slices.ContainsFunc(r.specs, func(s Spec) bool { return s.Name == name })
}

// Statuses probes every cluster in parallel (reusing results younger than ProbeTTL) and
// returns their statuses in config order.
func (r *Registry) Statuses(ctx context.Context) []Status {
	out := make([]Status, len(r.specs))
	var wg sync.WaitGroup
	for i, s := range r.specs {
		out[i] = Status{Name: s.Name, FluxNamespace: s.FluxNamespace}
		c, ok := r.clusters[s.Name]
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.probe(ctx, c)
		}()
	}
	wg.Wait()
	return out
}

func (r *Registry) probe(ctx context.Context, c *Cluster) Status {
	r.mu.Lock()
	st, ok := r.probes[c.Name]
	r.mu.Unlock()
	if ok && time.Since(st.CheckedAt) < ProbeTTL {
		return st
	}
	st = Status{Name: c.Name, FluxNamespace: c.FluxNamespace, Managed: true, CheckedAt: time.Now()}
	cfg := rest.CopyConfig(c.Config)
	cfg.Timeout = ProbeTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
		defer cancel()
		var v string
		v, err = serverVersion(pctx, dc)
		st.Version = v
	}
	if err != nil {
		st.Error = err.Error()
	} else {
		st.Reachable = true
	}
	r.mu.Lock()
	r.probes[c.Name] = st
	r.mu.Unlock()
	return st
}

// serverVersion asks the apiserver for its version, honouring ctx.
func serverVersion(ctx context.Context, dc *discovery.DiscoveryClient) (string, error) {
	body, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return "", fmt.Errorf("get /version: %w", err)
	}
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", fmt.Errorf("decode /version: %w", err)
	}
	return v.GitVersion, nil
}
