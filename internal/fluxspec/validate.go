package fluxspec

import (
	"net/url"
	"path"
	"regexp"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/semver/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Bounds of intervals and timeouts. Flux accepts any duration, but an interval under a few
// seconds hammers Git servers and registries, and a day-long timeout hides a hung reconcile.
const (
	minInterval = 5 * time.Second
	maxInterval = 7 * 24 * time.Hour
	maxTimeout  = 24 * time.Hour
)

// fluxDuration is the pattern of Flux's duration fields (the CRDs reject anything else, e.g.
// "1d" or "-1m").
var fluxDuration = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`)

// duration checks an optional duration field and returns it for the object (nil when unset).
func duration(field, v string, min, max time.Duration) (*metav1.Duration, error) {
	if v == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || !fluxDuration.MatchString(v) {
		return nil, fieldErr(field, "must be a duration like \"30s\", \"5m\" or \"1h30m\", got %q", v)
	}
	if d < min || d > max {
		return nil, fieldErr(field, "must be between %s and %s, got %s", min, max, v)
	}
	return &metav1.Duration{Duration: d}, nil
}

// interval is duration with the interval bounds and a default.
func interval(field, v string, def time.Duration) (metav1.Duration, error) {
	d, err := duration(field, v, minInterval, maxInterval)
	if err != nil {
		return metav1.Duration{}, err
	}
	if d == nil {
		return metav1.Duration{Duration: def}, nil
	}
	return *d, nil
}

func timeout(field, v string) (*metav1.Duration, error) {
	return duration(field, v, time.Second, maxTimeout)
}

// semverRange checks a semver constraint as Flux reads it (Masterminds semver), e.g.
// ">=1.0.0 <2.0.0", "^1.2", "6.x" or "*".
func semverRange(field, v string) error {
	if _, err := semver.NewConstraint(v); err != nil {
		return fieldErr(field, "must be a semver range like \"^1.2\" or \">=1.0.0 <2.0.0\", got %q: %v", v, err)
	}
	return nil
}

// objectName checks a reference to a Kubernetes object name (DNS-1123 subdomain).
func objectName(field, v string) error {
	if v == "" {
		return fieldErr(field, "is required")
	}
	if errs := validation.IsDNS1123Subdomain(v); len(errs) > 0 {
		return fieldErr(field, "%q is not a valid object name: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// namespaceName checks an optional namespace (DNS-1123 label).
func namespaceName(field, v string) error {
	if v == "" {
		return nil
	}
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		return fieldErr(field, "%q is not a valid namespace: %s", v, strings.Join(errs, "; "))
	}
	return nil
}

// relPath checks a path inside a source artifact and returns it in Flux's "./dir" form. It must
// stay inside the artifact: no absolute paths and no "..".
func relPath(field, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if strings.ContainsAny(v, "\\\x00") || strings.HasPrefix(v, "/") {
		return "", fieldErr(field, "must be a relative path inside the source, like \"./deploy/prod\", got %q", v)
	}
	for _, seg := range strings.Split(v, "/") {
		if seg == ".." {
			return "", fieldErr(field, "must not leave the source with \"..\", got %q", v)
		}
	}
	clean := path.Clean(v)
	if clean == "." {
		return "./", nil
	}
	return "./" + strings.TrimPrefix(clean, "./"), nil
}

// gitRefName is what git check-ref-format accepts for a branch, roughly: no spaces, control
// characters, "..", "~^:?*[\\", "@{", leading "-" or "/", trailing "/", ".lock" or ".".
var badRefChars = regexp.MustCompile(`[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//`)

func gitBranch(field, v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 255 || badRefChars.MatchString(v) || strings.HasPrefix(v, "-") || strings.HasPrefix(v, "/") ||
		strings.HasSuffix(v, "/") || strings.HasSuffix(v, ".lock") || strings.HasSuffix(v, ".") || v == "@" {
		return fieldErr(field, "%q is not a valid Git branch name", v)
	}
	return nil
}

var commitSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)

// repoURL checks a URL whose scheme must be one of schemes; credentials in it are refused, as
// they belong in a Secret.
func repoURL(field, v string, schemes ...string) error {
	if v == "" {
		return fieldErr(field, "is required")
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fieldErr(field, "must be a URL like %s://host/path, got %q", schemes[0], v)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return fieldErr(field, "must use one of the schemes %s, got %q", strings.Join(schemes, ", "), u.Scheme)
	}
	if _, has := u.User.Password(); has {
		return fieldErr(field, "must not hold a password; use the repository's credentials")
	}
	return nil
}

// goTemplate checks a Go text/template (ImageUpdateAutomation commit messages).
func goTemplate(field, v string) error {
	if v == "" {
		return nil
	}
	if _, err := template.New("msg").Parse(v); err != nil {
		return fieldErr(field, "is not a valid Go template: %v", err)
	}
	return nil
}

// regexpField checks a regular expression (Go RE2, as Flux compiles it).
func regexpField(field, v string) error {
	if _, err := regexp.Compile(v); err != nil {
		return fieldErr(field, "is not a valid regular expression: %v", err)
	}
	return nil
}

// firstErr returns the first non-nil error, for validating settings in order.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
