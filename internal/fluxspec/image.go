package fluxspec

import (
	"time"

	imageautov1 "github.com/fluxcd/image-automation-controller/api/v1"
	imagev1 "github.com/fluxcd/image-reflector-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	defaultScanInterval       = 5 * time.Minute
	defaultAutomationInterval = 30 * time.Minute
)

// ImageRepositoryConfig is the config of an ImageRepository; Interval is the scan interval.
type ImageRepositoryConfig struct {
	Image         string   `json:"image"`
	Interval      string   `json:"interval,omitempty"`
	Timeout       string   `json:"timeout,omitempty"`
	SecretRef     string   `json:"secretRef,omitempty"`
	Provider      string   `json:"provider,omitempty"`
	ExclusionList []string `json:"exclusionList,omitempty"`
	Insecure      bool     `json:"insecure,omitempty"`
}

// Kind implements Spec.
func (*ImageRepositoryConfig) Kind() string { return KindImageRepository }

// Dependencies implements Spec.
func (*ImageRepositoryConfig) Dependencies(string) []Ref { return nil }

func (c *ImageRepositoryConfig) validate() error {
	var errs []error
	if c.Image == "" {
		errs = append(errs, fieldErr("config.image", "is required, like \"ghcr.io/acme/webapp\""))
	}
	_, e1 := interval("config.interval", c.Interval, defaultScanInterval)
	_, e2 := timeout("config.timeout", c.Timeout)
	errs = append(errs, e1, e2, oneOf("config.provider", c.Provider, "generic", "aws", "azure", "gcp"))
	if c.SecretRef != "" {
		errs = append(errs, objectName("config.secretRef", c.SecretRef))
	}
	for i, re := range c.ExclusionList {
		errs = append(errs, regexpField("config.exclusionList["+itoa(i)+"]", re))
	}
	return firstErr(errs...)
}

func (c *ImageRepositoryConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultScanInterval)
	to, _ := timeout("", c.Timeout)
	obj := &imagev1.ImageRepository{
		TypeMeta: metav1.TypeMeta{APIVersion: imagev1.GroupVersion.String(), Kind: imagev1.ImageRepositoryKind},
		Spec: imagev1.ImageRepositorySpec{
			Image: c.Image, Interval: iv, Timeout: to, Provider: c.Provider, ExclusionList: c.ExclusionList,
			Insecure: c.Insecure, Suspend: t.Suspend,
		},
	}
	if c.SecretRef != "" {
		obj.Spec.SecretRef = &meta.LocalObjectReference{Name: c.SecretRef}
	}
	return obj, nil
}

// ImagePolicyConfig is the config of an ImagePolicy: exactly one of SemVer (a range),
// Alphabetical or Numerical ("asc" or "desc"), optionally on tags filtered by FilterTags.
type ImagePolicyConfig struct {
	ImageRepository string `json:"imageRepositoryRef"`
	SemVer          string `json:"semver,omitempty"`
	Alphabetical    string `json:"alphabetical,omitempty"`
	Numerical       string `json:"numerical,omitempty"`
	FilterTags      *struct {
		Pattern string `json:"pattern"`
		Extract string `json:"extract,omitempty"`
	} `json:"filterTags,omitempty"`
}

// Kind implements Spec.
func (*ImagePolicyConfig) Kind() string { return KindImagePolicy }

// Dependencies implements Spec.
func (*ImagePolicyConfig) Dependencies(string) []Ref { return nil }

func (c *ImagePolicyConfig) validate() error {
	n := 0
	for _, v := range []string{c.SemVer, c.Alphabetical, c.Numerical} {
		if v != "" {
			n++
		}
	}
	errs := []error{objectName("config.imageRepositoryRef", c.ImageRepository)}
	if n != 1 {
		errs = append(errs, fieldErr("config.semver", "set exactly one policy: semver, alphabetical or numerical"))
	}
	if c.SemVer != "" {
		errs = append(errs, semverRange("config.semver", c.SemVer))
	}
	errs = append(errs, oneOf("config.alphabetical", c.Alphabetical, "asc", "desc"),
		oneOf("config.numerical", c.Numerical, "asc", "desc"))
	if c.FilterTags != nil {
		errs = append(errs, regexpField("config.filterTags.pattern", c.FilterTags.Pattern))
	}
	return firstErr(errs...)
}

func (c *ImagePolicyConfig) build(t *Target) (client.Object, error) {
	obj := &imagev1.ImagePolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: imagev1.GroupVersion.String(), Kind: imagev1.ImagePolicyKind},
		Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: meta.NamespacedObjectReference{Name: c.ImageRepository},
			Suspend:            t.Suspend,
		},
	}
	switch {
	case c.SemVer != "":
		obj.Spec.Policy.SemVer = &imagev1.SemVerPolicy{Range: c.SemVer}
	case c.Alphabetical != "":
		obj.Spec.Policy.Alphabetical = &imagev1.AlphabeticalPolicy{Order: c.Alphabetical}
	default:
		obj.Spec.Policy.Numerical = &imagev1.NumericalPolicy{Order: c.Numerical}
	}
	if f := c.FilterTags; f != nil {
		obj.Spec.FilterTags = &imagev1.TagFilter{Pattern: f.Pattern, Extract: f.Extract}
	}
	return obj, nil
}

// ImageUpdateAutomationConfig is the config of an ImageUpdateAutomation: which GitRepository
// to write to, the branches to check out and push, the commit author and message template, and
// the path whose image setters are updated.
type ImageUpdateAutomationConfig struct {
	SourceRef       string `json:"sourceRef"` // a GitRepository in the same namespace
	Interval        string `json:"interval,omitempty"`
	CheckoutBranch  string `json:"checkoutBranch,omitempty"`
	PushBranch      string `json:"pushBranch,omitempty"`
	AuthorName      string `json:"authorName,omitempty"`
	AuthorEmail     string `json:"authorEmail"`
	MessageTemplate string `json:"messageTemplate,omitempty"`
	Path            string `json:"path,omitempty"`
}

// Kind implements Spec.
func (*ImageUpdateAutomationConfig) Kind() string { return KindImageUpdateAutomation }

// Dependencies implements Spec.
func (*ImageUpdateAutomationConfig) Dependencies(string) []Ref { return nil }

func (c *ImageUpdateAutomationConfig) validate() error {
	errs := []error{objectName("config.sourceRef", c.SourceRef)}
	_, e := interval("config.interval", c.Interval, defaultAutomationInterval)
	errs = append(errs, e, gitBranch("config.checkoutBranch", c.CheckoutBranch), gitBranch("config.pushBranch", c.PushBranch))
	if c.AuthorEmail == "" {
		errs = append(errs, fieldErr("config.authorEmail", "is required (the commit author's email)"))
	}
	_, e = relPath("config.path", c.Path)
	errs = append(errs, e, goTemplate("config.messageTemplate", c.MessageTemplate))
	return firstErr(errs...)
}

func (c *ImageUpdateAutomationConfig) build(t *Target) (client.Object, error) {
	iv, _ := interval("", c.Interval, defaultAutomationInterval)
	p, _ := relPath("", c.Path)
	if p == "" {
		p = t.Env.Path
	}
	branch := c.CheckoutBranch
	if branch == "" {
		branch = t.Env.Branch
	}
	name := c.AuthorName
	if name == "" {
		name = "fluxbridge"
	}
	obj := &imageautov1.ImageUpdateAutomation{
		TypeMeta: metav1.TypeMeta{APIVersion: imageautov1.GroupVersion.String(), Kind: imageautov1.ImageUpdateAutomationKind},
		Spec: imageautov1.ImageUpdateAutomationSpec{
			SourceRef: imageautov1.CrossNamespaceSourceReference{Kind: sourcev1.GitRepositoryKind, Name: c.SourceRef},
			Interval:  iv,
			GitSpec: &imageautov1.GitSpec{
				Commit: imageautov1.CommitSpec{
					Author:          imageautov1.CommitUser{Name: name, Email: c.AuthorEmail},
					MessageTemplate: c.MessageTemplate,
				},
			},
			Update:  &imageautov1.UpdateStrategy{Strategy: imageautov1.UpdateStrategySetters, Path: p},
			Suspend: t.Suspend,
		},
	}
	if branch != "" {
		obj.Spec.GitSpec.Checkout = &imageautov1.GitCheckoutSpec{Reference: sourcev1.GitRepositoryRef{Branch: branch}}
	}
	if c.PushBranch != "" {
		obj.Spec.GitSpec.Push = &imageautov1.PushSpec{Branch: c.PushBranch}
	}
	return obj, nil
}
