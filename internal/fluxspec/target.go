package fluxspec

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Labels and annotations fluxbridge puts on every object it applies. The labels let a person
// (or `kubectl get -l`) find them; the event annotations make Flux copy the values into the
// metadata of every event it sends about the object, so a webhook event names its resource.
const (
	LabelManagedBy      = "app.kubernetes.io/managed-by"
	ManagedByValue      = "fluxbridge"
	LabelProject        = "fluxbridge.io/project"
	LabelEnvironment    = "fluxbridge.io/environment"
	LabelResourceID     = "fluxbridge.io/resource-id"
	eventAnnotation     = "event.toolkit.fluxcd.io/"
	AnnotationProject   = eventAnnotation + "project"
	AnnotationEnv       = eventAnnotation + "environment"
	AnnotationCluster   = eventAnnotation + "cluster"
	AnnotationResource  = eventAnnotation + "fluxbridge-resource-id"
	syncPolicyAuto      = "auto"
	syncPolicyManual    = "manual"
	defaultAuthSuffix   = "-auth"
	maxObjectNameLength = 253
)

// Target is everything about where an object goes that is not in its own config: its name,
// namespace and cluster, the project and environment it belongs to (their settings apply to
// it), and the repository it reads from.
type Target struct {
	Namespace, Name string
	Cluster         string
	ResourceID      int64
	Project         string // project slug
	Environment     string // environment name; "" for project-wide objects
	Env             EnvSettings
	// Suspend is the API's suspend/resume state; a manual sync policy suspends appliers too.
	Suspend bool
	// ServiceAccount is the ServiceAccount an applier of an environment impersonates when its
	// config names none: the environment's, confined to its namespaces.
	ServiceAccount string
	Repo           *RepoSettings // nil when the resource has no repository
}

// RepoSettings are what a GitRepository takes from the platform repository it points at.
type RepoSettings struct {
	URL string
	// HasCredentials tells whether the repository has credentials that the apply job writes
	// into the Secret SecretName names.
	HasCredentials bool
}

// EnvSettings are the GitOps settings of an environment (its gitops_config) that shape its
// objects: its branch, its path and its sync policy. Other keys of gitops_config belong to other
// features and are ignored here.
type EnvSettings struct {
	// SyncPolicy is "auto" (Flux reconciles on its interval) or "manual" (the environment's
	// Kustomizations and HelmReleases are suspended and reconcile only on request).
	SyncPolicy string `json:"syncPolicy,omitempty"`
	// Branch is the default Git branch of the environment's GitRepositories.
	Branch string `json:"branch,omitempty"`
	// Path is the default path of the environment's Kustomizations.
	Path string `json:"path,omitempty"`
}

// ParseEnvSettings reads an environment's GitOps settings from its gitops_config and
// validates them; fields are reported as "gitops_config.<key>".
func ParseEnvSettings(raw json.RawMessage) (EnvSettings, error) {
	var e EnvSettings
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &e); err != nil {
			return EnvSettings{}, fieldErr("gitops_config", "must hold syncPolicy, branch and path as strings: %v", err)
		}
	}
	if err := oneOf("gitops_config.syncPolicy", e.SyncPolicy, syncPolicyAuto, syncPolicyManual); err != nil {
		return e, err
	}
	if err := gitBranch("gitops_config.branch", e.Branch); err != nil {
		return e, err
	}
	p, err := relPath("gitops_config.path", e.Path)
	if err != nil {
		return e, err
	}
	e.Path = p
	return e, nil
}

// Manual tells whether the environment syncs only on request.
func (e EnvSettings) Manual() bool { return e.SyncPolicy == syncPolicyManual }

// AuthSecretName is the Secret a GitRepository named name reads its credentials from when its
// config names none.
func AuthSecretName(name string) string {
	if len(name)+len(defaultAuthSuffix) > maxObjectNameLength {
		name = name[:maxObjectNameLength-len(defaultAuthSuffix)]
	}
	return name + defaultAuthSuffix
}

// Marks are the labels and annotations fluxbridge puts on the object: what makes it
// fluxbridge's, and what Flux copies into its events.
func (t *Target) Marks() (labels, annotations map[string]string) { return t.labels(), t.annotations() }

func (t *Target) labels() map[string]string {
	l := map[string]string{
		LabelManagedBy:  ManagedByValue,
		LabelResourceID: strconv.FormatInt(t.ResourceID, 10),
	}
	if t.Project != "" {
		l[LabelProject] = t.Project
	}
	if t.Environment != "" {
		l[LabelEnvironment] = t.Environment
	}
	return l
}

func (t *Target) annotations() map[string]string {
	a := map[string]string{AnnotationResource: strconv.FormatInt(t.ResourceID, 10)}
	if t.Project != "" {
		a[AnnotationProject] = t.Project
	}
	if t.Environment != "" {
		a[AnnotationEnv] = t.Environment
	}
	if t.Cluster != "" {
		a[AnnotationCluster] = t.Cluster
	}
	return a
}

// suspendApplier is the spec.suspend of an applier: suspended through the API, or in an
// environment that syncs only on request.
func (t *Target) suspendApplier() bool { return t.Suspend || t.Env.Manual() }

// serviceAccount is an applier's spec.serviceAccountName: its config's, else the target's.
func (t *Target) serviceAccount(configured string) string {
	if configured != "" {
		return configured
	}
	return t.ServiceAccount
}
