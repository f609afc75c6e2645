package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Bounds of the image scan interval: registries rate-limit scans, and a daily scan is the
// slowest that still feels automatic.
const (
	minScanInterval = 30 * time.Second
	maxScanInterval = 24 * time.Hour
)

func (f *Form) checkImageAutomation() error {
	a := f.ImageAutomation
	if a == nil {
		return nil
	}
	if strings.Contains(f.Image, "@") {
		return fieldErr("image_automation", "an image pinned by digest cannot follow tags; give a tag instead")
	}
	if a.SemVer == "" {
		return fieldErr("image_automation.semver", "is required: the range of tags to follow, like \">=1.4.0 <2.0.0\"")
	}
	if _, err := semver.NewConstraint(a.SemVer); err != nil {
		return fieldErr("image_automation.semver", "must be a semver range like \"^1.2\" or \">=1.0.0 <2.0.0\", got %q: %v", a.SemVer, err)
	}
	if a.ScanInterval != "" {
		d, err := time.ParseDuration(a.ScanInterval)
		if err != nil || d < minScanInterval || d > maxScanInterval {
			return fieldErr("image_automation.scan_interval", "must be a duration between %s and %s, got %q", minScanInterval, maxScanInterval, a.ScanInterval)
		}
	}
	return nil
}

// markImageSetter appends the image policy's setter comment to the container's image line,
// which is how image-automation-controller finds the value to update.
func markImageSetter(b []byte, image, policy string) ([]byte, error) {
	if policy == "" {
		return nil, errors.New("image automation needs the ImagePolicy's name in Options.ImagePolicy")
	}
	line := regexp.MustCompile(`(?m)^\s*(?:- )?image: "?` + regexp.QuoteMeta(image) + `"?$`)
	loc := line.FindAllIndex(b, -1)
	if len(loc) != 1 {
		return nil, fmt.Errorf("image line of %s not found once", image)
	}
	end := loc[0][1]
	out := make([]byte, 0, len(b)+len(policy)+24)
	out = append(out, b[:end]...)
	out = append(out, " # "+imageSetterComment(policy)...)
	return append(out, b[end:]...), nil
}

// imageSetterComment is the setter comment of an ImagePolicy, as Flux documents it.
func imageSetterComment(policy string) string {
	return `{"$imagepolicy": "` + policy + `"}`
}

// ImagePolicyRef returns the "<namespace>:<name>" a setter comment names.
func ImagePolicyRef(namespace, name string) string { return namespace + ":" + name }
