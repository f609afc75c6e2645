package fluxspec

import (
	"encoding/json"
	"slices"
	"strings"
)

// Imported is the config fluxbridge reads off a live object an admin imports.
type Imported struct {
	Config json.RawMessage
	// Suspend is the object's spec.suspend.
	Suspend bool
	// Ignored lists the spec fields (dotted paths) that fluxbridge's config has no key for:
	// they stay as they are in the cluster, managed by whoever set them, since fluxbridge's
	// server-side applies only ever touch the fields it sets.
	Ignored []string
}

// FromSpec turns the spec of a live Flux object of kind into fluxbridge's config of that kind,
// the reverse of Build: Flux's nested references (secretRef.name, chart.spec, policy.semver.range,
// git.commit.author, …) become the config's flat keys. The result is validated like any config;
// a field fluxbridge has no key for is listed in Ignored, not refused.
func FromSpec(kind string, spec map[string]any) (*Imported, error) {
	src, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(src, &m); err != nil || m == nil {
		m = map[string]any{}
	}
	out := &Imported{}
	if b, ok := m["suspend"].(bool); ok {
		out.Suspend = b
	}
	delete(m, "suspend")
	flatten := func(key string) { // {"secretRef": {"name": x}} → {"secretRef": x}
		if ref, ok := m[key].(map[string]any); ok {
			m[key] = ref["name"]
		}
	}
	switch kind {
	case KindGitRepository, KindOCIRepository, KindHelmRepository, KindBucket, KindImageRepository:
		flatten("secretRef")
	case KindKustomization:
		if pb, ok := m["postBuild"].(map[string]any); ok {
			if sub, ok := pb["substitute"]; ok {
				m["substitute"] = sub
				delete(pb, "substitute")
			}
			if len(pb) == 0 {
				delete(m, "postBuild")
			}
		}
	case KindHelmRelease:
		if ch, ok := m["chart"].(map[string]any); ok {
			if s, ok := ch["spec"]; ok {
				m["chart"] = s
			}
		}
		for _, k := range []string{"install", "upgrade"} {
			if r, ok := m[k].(map[string]any); ok {
				rem, _ := r["remediation"].(map[string]any)
				flat := map[string]any{}
				for key, v := range rem {
					if key == "retries" || key == "strategy" {
						flat[key] = v
					}
				}
				m[k] = flat
			}
		}
	case KindImagePolicy:
		flatten("imageRepositoryRef")
		if p, ok := m["policy"].(map[string]any); ok {
			if v, ok := p["semver"].(map[string]any); ok {
				m["semver"] = v["range"]
			}
			if v, ok := p["alphabetical"].(map[string]any); ok {
				m["alphabetical"] = v["order"]
			}
			if v, ok := p["numerical"].(map[string]any); ok {
				m["numerical"] = v["order"]
			}
			delete(m, "policy")
		}
	case KindImageUpdateAutomation:
		flatten("sourceRef")
		if g, ok := m["git"].(map[string]any); ok {
			if co, ok := g["checkout"].(map[string]any); ok {
				if ref, ok := co["ref"].(map[string]any); ok {
					m["checkoutBranch"] = ref["branch"]
				}
			}
			if p, ok := g["push"].(map[string]any); ok {
				m["pushBranch"] = p["branch"]
			}
			if c, ok := g["commit"].(map[string]any); ok {
				if a, ok := c["author"].(map[string]any); ok {
					m["authorName"], m["authorEmail"] = a["name"], a["email"]
				}
				m["messageTemplate"] = c["messageTemplate"]
			}
			delete(m, "git")
		}
		if u, ok := m["update"].(map[string]any); ok {
			m["path"] = u["path"]
			delete(m, "update")
		}
	}
	for k, v := range m {
		if v == nil {
			delete(m, k)
		}
	}
	spec2, err := newSpec(kind)
	if err != nil {
		return nil, err
	}
	adjusted, _ := json.Marshal(m)
	if err := json.Unmarshal(adjusted, spec2); err != nil {
		return nil, fieldErr("spec", "cannot be read as a %s config: %v", kind, err)
	}
	cfg, err := json.Marshal(spec2)
	if err != nil {
		return nil, err
	}
	if _, err := Decode(kind, cfg); err != nil {
		return nil, err
	}
	out.Config = cfg
	var kept map[string]any
	_ = json.Unmarshal(cfg, &kept)
	have := leafPaths("", kept)
	for _, p := range leafPaths("", m) {
		if !slices.ContainsFunc(have, func(h string) bool { return h == p || strings.HasPrefix(p, h+".") || strings.HasPrefix(h, p+".") }) {
			out.Ignored = append(out.Ignored, "spec."+p)
		}
	}
	slices.Sort(out.Ignored)
	return out, nil
}

// leafPaths lists the dotted paths of the leaves of a decoded JSON value (an object's keys, a
// list as one leaf).
func leafPaths(prefix string, v any) []string {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) == 0 {
		if prefix == "" {
			return nil
		}
		return []string{prefix}
	}
	var out []string
	for k, sub := range obj {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(p, sub)...)
	}
	return out
}

// newSpec is the empty config of kind.
func newSpec(kind string) (Spec, error) {
	switch kind {
	case KindGitRepository:
		return &GitRepositoryConfig{}, nil
	case KindOCIRepository:
		return &OCIRepositoryConfig{}, nil
	case KindHelmRepository:
		return &HelmRepositoryConfig{}, nil
	case KindHelmChart:
		return &HelmChartConfig{}, nil
	case KindBucket:
		return &BucketConfig{}, nil
	case KindKustomization:
		return &KustomizationConfig{}, nil
	case KindHelmRelease:
		return &HelmReleaseConfig{}, nil
	case KindImageRepository:
		return &ImageRepositoryConfig{}, nil
	case KindImagePolicy:
		return &ImagePolicyConfig{}, nil
	case KindImageUpdateAutomation:
		return &ImageUpdateAutomationConfig{}, nil
	}
	return nil, fieldErr("kind", "must be one of %s, got %q", strings.Join(Kinds, ", "), kind)
}
