package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Change is one difference between two deploys of an app, in words a person reads in
// `git log --oneline`: "image 1.4.2 → 1.4.3", "replicas 2 → 3", "env LOG_LEVEL added".
type Change struct {
	// Field is the form field, e.g. "image", "replicas", "env".
	Field string
	// Text is the change in a few words.
	Text string
}

// Diff lists what changed from the previous deploy (prev, of kind prevKind) to cur (of kind),
// comparing the forms with their defaults filled in, in a fixed order. With prev nil the app
// is new and the list describes it ("new web-app", "image ghcr.io/acme/api:1.4.3"). Values
// of environment variables are never shown, only their names.
func Diff(prevKind string, prev *Form, kind string, cur Form) []Change {
	c := cur.withDefaults(kind)
	if prev == nil && kind == KindHelmApp {
		return []Change{{Field: "template", Text: "new " + kind}}
	}
	if prev == nil {
		out := []Change{{Field: "template", Text: "new " + kind}, {Field: "image", Text: "image " + imageRef(c.Image, c.Tag)}}
		if c.Replicas != nil {
			out = append(out, Change{Field: "replicas", Text: fmt.Sprintf("replicas %d", *c.Replicas)})
		}
		if kind == KindCronJob {
			out = append(out, Change{Field: "schedule", Text: fmt.Sprintf("schedule %q", c.Schedule)})
		}
		return out
	}
	p := prev.withDefaults(prevKind)
	var out []Change
	add := func(field, format string, args ...any) {
		out = append(out, Change{Field: field, Text: fmt.Sprintf(format, args...)})
	}
	if prevKind != kind {
		add("template", "template %s → %s", prevKind, kind)
		if kind == KindHelmApp || prevKind == KindHelmApp {
			return out // a chart replaces the workload, or the other way round: nothing to compare
		}
	}
	if kind == KindHelmApp {
		if p.Namespace != c.Namespace { // all a helm-app's form holds besides its name
			add("namespace", "namespace %s → %s", orNone(p.Namespace), orNone(c.Namespace))
		}
		return out
	}
	switch {
	case p.Image == c.Image && p.Tag != c.Tag:
		add("image", "image %s → %s", orNone(p.Tag), orNone(c.Tag))
	case p.Image != c.Image || p.Tag != c.Tag:
		add("image", "image %s → %s", imageRef(p.Image, p.Tag), imageRef(c.Image, c.Tag))
	}
	if a, b := num(p.Replicas), num(c.Replicas); a != b {
		add("replicas", "replicas %s → %s", a, b)
	}
	if p.Namespace != c.Namespace {
		add("namespace", "namespace %s → %s", orNone(p.Namespace), orNone(c.Namespace))
	}
	if p.Schedule != c.Schedule {
		add("schedule", "schedule %q → %q", p.Schedule, c.Schedule)
	}
	if p.TimeZone != c.TimeZone {
		add("time_zone", "time zone %s → %s", orNone(p.TimeZone), orNone(c.TimeZone))
	}
	if a, b := portList(p.Ports), portList(c.Ports); a != b {
		add("ports", "ports %s → %s", orNone(a), orNone(b))
	}
	out = append(out, envChanges(p.Env, c.Env)...)
	out = append(out, resourceChanges(p.Resources, c.Resources)...)
	for _, x := range []struct {
		field, name string
		a, b        any
	}{
		{"liveness_probe", "liveness probe", p.LivenessProbe, c.LivenessProbe},
		{"readiness_probe", "readiness probe", p.ReadinessProbe, c.ReadinessProbe},
		{"command", "command", p.Command, c.Command},
		{"args", "args", p.Args, c.Args},
		{"run_as_user", "run-as user", p.RunAsUser, c.RunAsUser},
	} {
		if !sameJSON(x.a, x.b) {
			add(x.field, "%s changed", x.name)
		}
	}
	if p.Ingress != nil && c.Ingress != nil {
		if p.Ingress.Host != c.Ingress.Host {
			add("ingress.host", "host %s → %s", orNone(p.Ingress.Host), orNone(c.Ingress.Host))
		}
		if !sameJSON(Ingress{Path: p.Ingress.Path, ClassName: p.Ingress.ClassName, TLSSecret: p.Ingress.TLSSecret},
			Ingress{Path: c.Ingress.Path, ClassName: c.Ingress.ClassName, TLSSecret: c.Ingress.TLSSecret}) {
			add("ingress", "ingress changed")
		}
	}
	switch a, b := p.ImageAutomation, c.ImageAutomation; {
	case a == nil && b != nil:
		add("image_automation", "image automation on (%s)", b.SemVer)
	case a != nil && b == nil:
		add("image_automation", "image automation off")
	case a != nil && b != nil && a.SemVer != b.SemVer:
		add("image_automation.semver", "image range %s → %s", a.SemVer, b.SemVer)
	}
	if p.Autoscaling != nil && c.Autoscaling != nil {
		if p.Autoscaling.MaxReplicas != c.Autoscaling.MaxReplicas {
			add("autoscaling.max_replicas", "max replicas %d → %d", p.Autoscaling.MaxReplicas, c.Autoscaling.MaxReplicas)
		}
		if p.Autoscaling.TargetCPUPercent != c.Autoscaling.TargetCPUPercent {
			add("autoscaling.target_cpu_percent", "CPU target %d%% → %d%%", p.Autoscaling.TargetCPUPercent, c.Autoscaling.TargetCPUPercent)
		}
	}
	return out
}

func envChanges(prev, cur []EnvVar) []Change {
	index := func(vs []EnvVar) map[string]EnvVar {
		m := make(map[string]EnvVar, len(vs))
		for _, v := range vs {
			m[v.Name] = v
		}
		return m
	}
	a, b := index(prev), index(cur)
	var out []Change
	for _, name := range slices.Sorted(maps.Keys(b)) {
		old, ok := a[name]
		switch {
		case !ok:
			out = append(out, Change{Field: "env", Text: "env " + name + " added"})
		case !sameJSON(old, b[name]):
			out = append(out, Change{Field: "env", Text: "env " + name + " changed"})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[name]; !ok {
			out = append(out, Change{Field: "env", Text: "env " + name + " removed"})
		}
	}
	return out
}

func resourceChanges(prev, cur *Resources) []Change {
	var out []Change
	for _, part := range []struct {
		name string
		a, b map[string]string
	}{{"request", prev.Requests, cur.Requests}, {"limit", prev.Limits, cur.Limits}} {
		keys := slices.Sorted(maps.Keys(part.a))
		for k := range part.b {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			if part.a[k] != part.b[k] {
				out = append(out, Change{Field: "resources", Text: fmt.Sprintf("%s %s %s → %s", k, part.name, orNone(part.a[k]), orNone(part.b[k]))})
			}
		}
	}
	return out
}

func portList(ps []Port) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = fmt.Sprint(p.ContainerPort)
		if p.ServicePort != p.ContainerPort {
			s[i] = fmt.Sprintf("%d:%d", p.ServicePort, p.ContainerPort)
		}
		if p.Protocol != "TCP" {
			s[i] += "/" + p.Protocol
		}
	}
	return strings.Join(s, ",")
}

func num(p *int32) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
