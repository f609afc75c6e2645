package fluxspec

import (
	"time"

	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Default intervals of the sources, as in Flux's documentation examples.
const (
	defaultGitInterval       = time.Minute
	defaultOCIInterval       = 5 * time.Minute
	defaultHelmRepoInterval  = 10 * time.Minute
	defaultHelmChartInterval = 5 * time.Minute
	defaultBucketInterval    = 5 * time.Minute
)

// GitRef selects what a GitRepository checks out; at most one of its fields may be set. Empty
// means the environment's branch, or the repository's default branch.
type GitRef struct {
	Branch string `json:"branch,omitempty"`
	Tag    string `json:"tag,omitempty"`
	SemVer string `json:"semver,omitempty"`
	Name   string `json:"name,omitempty"`
	Commit string `json:"commit,omitempty"`
}

func (r *GitRef) validate(field string) error {
	n := 0
	for _, v := range []string{r.Branch, r.Tag, r.SemVer, r.Name, r.Commit} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return fieldErr(field, "set only one of branch, tag, semver, name and commit")
	}
	if r.SemVer != "" {
		if err := semverRange(field+".semver", r.SemVer); err != nil {
			return err
		}
	}
	if r.Commit != "" && !commitSHA.MatchString(r.Commit) {
		return fieldErr(field+".commit", "must be a full lowercase hex commit SHA, got %q", r.Commit)
	}
	return gitBranch(field+".branch", r.Branch)
}

// GitRepositoryConfig is the config of a GitRepository. URL defaults to the resource's
// repository; a repository with credentials gets a Secret (SecretRef, default "<name>-auth")
// written by the apply job.
type GitRepositoryConfig struct {
	URL       string  `json:"url,omitempty"`
	Ref       *GitRef `json:"ref,omitempty"`
	Interval  string  `json:"interval,omitempty"`
	Timeout   string  `json:"timeout,omitempty"`
	SecretRef string  `json:"secretRef,omitempty"`
	Ignore    string  `json:"ignore,omitempty"`
	Provider  string  `json:"provider,omitempty"`
	// RecurseSubmodules clones submodules too.
	RecurseSubmodules bool `json:"recurseSubmodules,omitempty"`
}

// Kind implements Spec.
func (*GitRepositoryConfig) Kind() string { return KindGitRepository }

// Dependencies implements Spec; sources have no dependencies.
func (*GitRepositoryConfig) Dependencies(string) []Ref { return nil }

func (c *GitRepositoryConfig) validate() error {
	var errs []error
	if c.URL != "" {
		errs = append(errs, repoURL("config.url", c.URL, "https", "http", "ssh"))
	}
	if c.Ref != nil {
		errs = append(errs, c.Ref.validate("config.ref"))
	}
	_, e1 := interval("config.interval", c.Interval, defaultGitInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	errs = append(errs, e1, e2, oneOf("config.provider", c.Provider, "generic", "azure", "github"))
	if c.SecretRef != "" {
		errs = append(errs, objectName("config.secretRef", c.SecretRef))
	}
	return firstErr(errs...)
}

// SecretName is the Secret the GitRepository reads credentials from, "" for none.
func (c *GitRepositoryConfig) SecretName(t *Target) string {
	switch {
	case c.SecretRef != "":
		return c.SecretRef
	case t.Repo != nil && t.Repo.HasCredentials:
		return AuthSecretName(t.Name)
	}
	return ""
}

func (c *GitRepositoryConfig) build(t *Target) (client.Object, error) {
	url := c.URL
	if url == "" && t.Repo != nil {
		url = t.Repo.URL
	}
	if url == "" {
		return nil, fieldErr("config.url", "is required when the resource has no repository")
	}
	if err := repoURL("config.url", url, "https", "http", "ssh"); err != nil {
		return nil, err
	}
	iv, _ := interval("", c.Interval, defaultGitInterval)
	to, _ := timeout("", c.Timeout)
	ref := &sourcev1.GitRepositoryRef{}
	if c.Ref != nil {
		ref = &sourcev1.GitRepositoryRef{Branch: c.Ref.Branch, Tag: c.Ref.Tag, SemVer: c.Ref.SemVer, Name: c.Ref.Name, Commit: c.Ref.Commit}
	}
	if *ref == (sourcev1.GitRepositoryRef{}) {
		ref.Branch = t.Env.Branch
	}
	if *ref == (sourcev1.GitRepositoryRef{}) {
		ref = nil
	}
	obj := &sourcev1.GitRepository{
		TypeMeta: metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.GitRepositoryKind},
		Spec: sourcev1.GitRepositorySpec{
			URL: url, Reference: ref, Interval: iv, Timeout: to, Suspend: t.Suspend,
			Provider: c.Provider, RecurseSubmodules: c.RecurseSubmodules,
		},
	}
	if c.Ignore != "" {
		obj.Spec.Ignore = &c.Ignore
	}
	if s := c.SecretName(t); s != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: s}
	}
	return obj, nil
}

// OCIRepositoryConfig is the config of an OCIRepository.
type OCIRepositoryConfig struct {
	URL string `json:"url"`
	Ref *struct {
		Tag    string `json:"tag,omitempty"`
		SemVer string `json:"semver,omitempty"`
		Digest string `json:"digest,omitempty"`
	} `json:"ref,omitempty"`
	Interval  string `json:"interval,omitempty"`
	Timeout   string `json:"timeout,omitempty"`
	Provider  string `json:"provider,omitempty"`
	SecretRef string `json:"secretRef,omitempty"`
	Insecure  bool   `json:"insecure,omitempty"`
}

// Kind implements Spec.
func (*OCIRepositoryConfig) Kind() string { return KindOCIRepository }

// Dependencies implements Spec.
func (*OCIRepositoryConfig) Dependencies(string) []Ref { return nil }

func (c *OCIRepositoryConfig) validate() error {
	errs := []error{repoURL("config.url", c.URL, "oci")}
	if c.Ref != nil && c.Ref.SemVer != "" {
		errs = append(errs, semverRange("config.ref.semver", c.Ref.SemVer))
	}
	_, e1 := interval("config.interval", c.Interval, defaultOCIInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	errs = append(errs, e1, e2, oneOf("config.provider", c.Provider, "generic", "aws", "azure", "gcp"))
	if c.SecretRef != "" {
		errs = append(errs, objectName("config.secretRef", c.SecretRef))
	}
	return firstErr(errs...)
}

func (c *OCIRepositoryConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultOCIInterval)
	to, _ := timeout("", c.Timeout)
	obj := &sourcev1.OCIRepository{
		TypeMeta: metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.OCIRepositoryKind},
		Spec: sourcev1.OCIRepositorySpec{
			URL: c.URL, Interval: iv, Timeout: to, Provider: c.Provider, Insecure: c.Insecure, Suspend: t.Suspend,
		},
	}
	if c.Ref != nil {
		obj.Spec.Reference = &sourcev1.OCIRepositoryRef{Tag: c.Ref.Tag, SemVer: c.Ref.SemVer, Digest: c.Ref.Digest}
	}
	if c.SecretRef != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: c.SecretRef}
	}
	return obj, nil
}

// HelmRepositoryConfig is the config of a HelmRepository (type "default" for an HTTP index,
// "oci" for an OCI registry).
type HelmRepositoryConfig struct {
	URL             string `json:"url"`
	Type            string `json:"type,omitempty"`
	Interval        string `json:"interval,omitempty"`
	Timeout         string `json:"timeout,omitempty"`
	Provider        string `json:"provider,omitempty"`
	SecretRef       string `json:"secretRef,omitempty"`
	PassCredentials bool   `json:"passCredentials,omitempty"`
}

// Kind implements Spec.
func (*HelmRepositoryConfig) Kind() string { return KindHelmRepository }

// Dependencies implements Spec.
func (*HelmRepositoryConfig) Dependencies(string) []Ref { return nil }

func (c *HelmRepositoryConfig) validate() error {
	errs := []error{oneOf("config.type", c.Type, "default", "oci")}
	if c.Type == "oci" {
		errs = append(errs, repoURL("config.url", c.URL, "oci"))
	} else {
		errs = append(errs, repoURL("config.url", c.URL, "https", "http"))
	}
	_, e1 := interval("config.interval", c.Interval, defaultHelmRepoInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	errs = append(errs, e1, e2, oneOf("config.provider", c.Provider, "generic", "aws", "azure", "gcp"))
	if c.SecretRef != "" {
		errs = append(errs, objectName("config.secretRef", c.SecretRef))
	}
	return firstErr(errs...)
}

func (c *HelmRepositoryConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultHelmRepoInterval)
	to, _ := timeout("", c.Timeout)
	obj := &sourcev1.HelmRepository{
		TypeMeta: metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmRepositoryKind},
		Spec: sourcev1.HelmRepositorySpec{
			URL: c.URL, Type: c.Type, Interval: iv, Timeout: to, Provider: c.Provider,
			PassCredentials: c.PassCredentials, Suspend: t.Suspend,
		},
	}
	if c.SecretRef != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: c.SecretRef}
	}
	return obj, nil
}

// SourceRef points at a source object in the same cluster; Namespace defaults to the
// referring object's.
type SourceRef struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

func (r *SourceRef) validate(field string, kinds ...string) error {
	if r.Kind == "" {
		return fieldErr(field+".kind", "is required; one of %v", kinds)
	}
	return firstErr(oneOf(field+".kind", r.Kind, kinds...), objectName(field+".name", r.Name),
		namespaceName(field+".namespace", r.Namespace))
}

// HelmChartConfig is the config of a HelmChart. Version may be a semver range, which makes
// Flux follow the newest matching chart version (auto-upgrade).
type HelmChartConfig struct {
	Chart             string    `json:"chart"`
	Version           string    `json:"version,omitempty"`
	SourceRef         SourceRef `json:"sourceRef"`
	Interval          string    `json:"interval,omitempty"`
	ReconcileStrategy string    `json:"reconcileStrategy,omitempty"`
	ValuesFiles       []string  `json:"valuesFiles,omitempty"`
}

// Kind implements Spec.
func (*HelmChartConfig) Kind() string { return KindHelmChart }

// Dependencies implements Spec.
func (*HelmChartConfig) Dependencies(string) []Ref { return nil }

func (c *HelmChartConfig) validate() error {
	errs := []error{c.SourceRef.validate("config.sourceRef", KindHelmRepository, KindGitRepository, KindBucket)}
	if c.Chart == "" {
		errs = append(errs, fieldErr("config.chart", "is required (a chart name, or a path in a Git source)"))
	}
	errs = append(errs, chartOf("config.", c.SourceRef.Kind, c.Chart, c.Version))
	_, e1 := interval("config.interval", c.Interval, defaultHelmChartInterval)
	errs = append(errs, e1, oneOf("config.reconcileStrategy", c.ReconcileStrategy, "ChartVersion", "Revision"))
	return firstErr(errs...)
}

func (c *HelmChartConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultHelmChartInterval)
	return &sourcev1.HelmChart{
		TypeMeta: metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.HelmChartKind},
		Spec: sourcev1.HelmChartSpec{
			Chart: c.Chart, Version: c.Version, Interval: iv, ReconcileStrategy: c.ReconcileStrategy,
			SourceRef:   sourcev1.LocalHelmChartSourceReference{Kind: c.SourceRef.Kind, Name: c.SourceRef.Name},
			ValuesFiles: c.ValuesFiles, Suspend: t.Suspend,
		},
	}, nil
}

// BucketConfig is the config of a Bucket (S3-compatible or cloud object storage).
type BucketConfig struct {
	BucketName string `json:"bucketName"`
	Endpoint   string `json:"endpoint"`
	Provider   string `json:"provider,omitempty"`
	Region     string `json:"region,omitempty"`
	Prefix     string `json:"prefix,omitempty"`
	Insecure   bool   `json:"insecure,omitempty"`
	Interval   string `json:"interval,omitempty"`
	Timeout    string `json:"timeout,omitempty"`
	SecretRef  string `json:"secretRef,omitempty"`
	Ignore     string `json:"ignore,omitempty"`
}

// Kind implements Spec.
func (*BucketConfig) Kind() string { return KindBucket }

// Dependencies implements Spec.
func (*BucketConfig) Dependencies(string) []Ref { return nil }

func (c *BucketConfig) validate() error {
	var errs []error
	if c.BucketName == "" {
		errs = append(errs, fieldErr("config.bucketName", "is required"))
	}
	if c.Endpoint == "" {
		errs = append(errs, fieldErr("config.endpoint", "is required (host[:port] of the object store)"))
	}
	_, e1 := interval("config.interval", c.Interval, defaultBucketInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	errs = append(errs, e1, e2, oneOf("config.provider", c.Provider, "generic", "aws", "gcp", "azure"))
	if c.SecretRef != "" {
		errs = append(errs, objectName("config.secretRef", c.SecretRef))
	}
	return firstErr(errs...)
}

func (c *BucketConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultBucketInterval)
	to, _ := timeout("", c.Timeout)
	obj := &sourcev1.Bucket{
		TypeMeta: metav1.TypeMeta{APIVersion: sourcev1.GroupVersion.String(), Kind: sourcev1.BucketKind},
		Spec: sourcev1.BucketSpec{
			BucketName: c.BucketName, Endpoint: c.Endpoint, Provider: c.Provider, Region: c.Region,
			Prefix: c.Prefix, Insecure: c.Insecure, Interval: iv, Timeout: to, Suspend: t.Suspend,
		},
	}
	if c.Ignore != "" {
		obj.Spec.Ignore = &c.Ignore
	}
	if c.SecretRef != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: c.SecretRef}
	}
	return obj, nil
}
