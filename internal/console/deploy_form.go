package console

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/manifest"
)

// deployForm is the deploy form as typed: strings, so that a bad number is shown back as
// typed, with its error. Input names are the API's JSON field paths ("ports[0].container_port"),
// so an error the core names by field lands beside its input.
type deployForm struct {
	Template, App, Namespace, Image, Tag, Replicas string
	Ports                                          []portRow
	Env                                            []envRow
	ReqCPU, ReqMem, LimCPU, LimMem                 string
	Readiness, Liveness                            probeRow
	IngressHost, IngressPath, IngressClass         string
	IngressTLS, MaxReplicas, TargetCPU             string
	Schedule, TimeZone                             string
}

type portRow struct{ Name, ContainerPort, ServicePort string }

type envRow struct{ Name, Source, Value, SecretName, SecretKey string }

type probeRow struct{ Type, Path, Port string }

// maxRows bounds the rows of a list a form may post.
const maxRows = 64

var rowKeyRE = regexp.MustCompile(`^(ports|env)\[(\d+)\]\.(.+)$`)

// parseDeployForm reads posted values; rows are renumbered from 0 in their posted order.
func parseDeployForm(v url.Values) deployForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	f := deployForm{
		Template: g("template"), App: g("app"), Namespace: g("namespace"), Image: g("image"), Tag: g("tag"), Replicas: g("replicas"),
		ReqCPU: g("resources.requests.cpu"), ReqMem: g("resources.requests.memory"),
		LimCPU: g("resources.limits.cpu"), LimMem: g("resources.limits.memory"),
		Readiness:   probeRow{g("readiness_probe.type"), g("readiness_probe.path"), g("readiness_probe.port")},
		Liveness:    probeRow{g("liveness_probe.type"), g("liveness_probe.path"), g("liveness_probe.port")},
		IngressHost: g("ingress.host"), IngressPath: g("ingress.path"), IngressClass: g("ingress.class_name"), IngressTLS: g("ingress.tls_secret"),
		MaxReplicas: g("autoscaling.max_replicas"), TargetCPU: g("autoscaling.target_cpu_percent"),
		Schedule: g("schedule"), TimeZone: g("time_zone"),
	}
	rows := map[string]map[int]map[string]string{"ports": {}, "env": {}}
	for k, vals := range v {
		m := rowKeyRE.FindStringSubmatch(k)
		if m == nil || len(vals) == 0 {
			continue
		}
		i, err := strconv.Atoi(m[2])
		if err != nil || i >= maxRows {
			continue
		}
		if rows[m[1]][i] == nil {
			rows[m[1]][i] = map[string]string{}
		}
		rows[m[1]][i][m[3]] = strings.TrimSpace(vals[0])
	}
	for _, i := range sortedKeys(rows["ports"]) {
		r := rows["ports"][i]
		if r["name"] == "" && r["container_port"] == "" && r["service_port"] == "" {
			continue // an empty row is no row
		}
		f.Ports = append(f.Ports, portRow{Name: r["name"], ContainerPort: r["container_port"], ServicePort: r["service_port"]})
	}
	for _, i := range sortedKeys(rows["env"]) {
		r := rows["env"][i]
		if r["name"] == "" && r["value"] == "" && r["secret_key_ref.name"] == "" && r["secret_key_ref.key"] == "" {
			continue
		}
		f.Env = append(f.Env, envRow{Name: r["name"], Source: r["source"], Value: r["value"], SecretName: r["secret_key_ref.name"], SecretKey: r["secret_key_ref.key"]})
	}
	return f
}

func sortedKeys(m map[int]map[string]string) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// values writes the form back as posted values (the preview's hidden inputs), rows renumbered.
func (f deployForm) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	set("template", f.Template)
	set("app", f.App)
	set("namespace", f.Namespace)
	set("image", f.Image)
	set("tag", f.Tag)
	set("replicas", f.Replicas)
	for i, p := range f.Ports {
		pre := fmt.Sprintf("ports[%d].", i)
		set(pre+"name", p.Name)
		set(pre+"container_port", p.ContainerPort)
		set(pre+"service_port", p.ServicePort)
	}
	for i, e := range f.Env {
		pre := fmt.Sprintf("env[%d].", i)
		set(pre+"name", e.Name)
		set(pre+"source", e.Source)
		set(pre+"value", e.Value)
		set(pre+"secret_key_ref.name", e.SecretName)
		set(pre+"secret_key_ref.key", e.SecretKey)
	}
	set("resources.requests.cpu", f.ReqCPU)
	set("resources.requests.memory", f.ReqMem)
	set("resources.limits.cpu", f.LimCPU)
	set("resources.limits.memory", f.LimMem)
	for name, p := range map[string]probeRow{"readiness_probe": f.Readiness, "liveness_probe": f.Liveness} {
		set(name+".type", p.Type)
		set(name+".path", p.Path)
		set(name+".port", p.Port)
	}
	set("ingress.host", f.IngressHost)
	set("ingress.path", f.IngressPath)
	set("ingress.class_name", f.IngressClass)
	set("ingress.tls_secret", f.IngressTLS)
	set("autoscaling.max_replicas", f.MaxReplicas)
	set("autoscaling.target_cpu_percent", f.TargetCPU)
	set("schedule", f.Schedule)
	set("time_zone", f.TimeZone)
	return v
}

// fieldErrors are messages by input name, in the order found.
type fieldErrors struct {
	byName map[string]string
	order  []string
}

func (e *fieldErrors) add(name, msg string) {
	if e.byName == nil {
		e.byName = map[string]string{}
	}
	if _, ok := e.byName[name]; !ok {
		e.order = append(e.order, name)
	}
	e.byName[name] = msg
}

func (e *fieldErrors) empty() bool { return e == nil || len(e.order) == 0 }

// object turns the form into the API's deploy body; numbers that do not parse are errors at
// their field. Empty inputs are left out, so a saved template's values stay.
func (f deployForm) object() (map[string]json.RawMessage, *fieldErrors) {
	errs := &fieldErrors{}
	num := func(name, s string, dst **int32) {
		if s == "" {
			return
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			errs.add(name, fmt.Sprintf("%q is not a whole number", s))
			return
		}
		v := int32(n)
		*dst = &v
	}
	var form manifest.Form
	form.App, form.Namespace, form.Image, form.Tag = f.App, f.Namespace, f.Image, f.Tag
	num("replicas", f.Replicas, &form.Replicas)
	for i, p := range f.Ports {
		if p == (portRow{}) {
			continue
		}
		var cp, sp *int32
		num(fmt.Sprintf("ports[%d].container_port", i), p.ContainerPort, &cp)
		num(fmt.Sprintf("ports[%d].service_port", i), p.ServicePort, &sp)
		port := manifest.Port{Name: p.Name}
		if cp != nil {
			port.ContainerPort = *cp
		}
		if sp != nil {
			port.ServicePort = *sp
		}
		form.Ports = append(form.Ports, port)
	}
	for _, e := range f.Env {
		if e.Name == "" && e.Value == "" && e.SecretName == "" && e.SecretKey == "" {
			continue
		}
		ev := manifest.EnvVar{Name: e.Name}
		if e.Source == "secret" {
			ev.SecretKeyRef = &manifest.SecretKeyRef{Name: e.SecretName, Key: e.SecretKey}
		} else {
			val := e.Value
			ev.Value = &val
		}
		form.Env = append(form.Env, ev)
	}
	res := &manifest.Resources{Requests: map[string]string{}, Limits: map[string]string{}}
	for k, v := range map[string]string{"cpu": f.ReqCPU, "memory": f.ReqMem} {
		if v != "" {
			res.Requests[k] = v
		}
	}
	for k, v := range map[string]string{"cpu": f.LimCPU, "memory": f.LimMem} {
		if v != "" {
			res.Limits[k] = v
		}
	}
	if len(res.Requests)+len(res.Limits) > 0 {
		form.Resources = res
	}
	form.ReadinessProbe = f.Readiness.probe("readiness_probe", errs)
	form.LivenessProbe = f.Liveness.probe("liveness_probe", errs)
	if f.IngressHost != "" || f.IngressPath != "" || f.IngressClass != "" || f.IngressTLS != "" {
		form.Ingress = &manifest.Ingress{Host: f.IngressHost, Path: f.IngressPath, ClassName: f.IngressClass, TLSSecret: f.IngressTLS}
	}
	if f.MaxReplicas != "" || f.TargetCPU != "" {
		var mx, cpu *int32
		num("autoscaling.max_replicas", f.MaxReplicas, &mx)
		num("autoscaling.target_cpu_percent", f.TargetCPU, &cpu)
		a := &manifest.Autoscaling{}
		if mx != nil {
			a.MaxReplicas = *mx
		}
		if cpu != nil {
			a.TargetCPUPercent = *cpu
		}
		form.Autoscaling = a
	}
	form.Schedule, form.TimeZone = f.Schedule, f.TimeZone
	if !errs.empty() {
		return nil, errs
	}
	b, err := json.Marshal(form)
	if err != nil {
		errs.add("", err.Error())
		return nil, errs
	}
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &obj); err != nil {
		errs.add("", err.Error())
		return nil, errs
	}
	for k, v := range obj { // leave out what was not filled in
		if s := string(v); s == `""` || s == "null" {
			delete(obj, k)
		}
	}
	if f.Template != "" {
		obj["template"], _ = json.Marshal(f.Template)
	}
	return obj, nil
}

// probe is a health check from its type ("" default, "http", "tcp", "none" is default too).
func (p probeRow) probe(name string, errs *fieldErrors) *manifest.Probe {
	port := manifest.PortValue{Name: p.Port}
	if n, err := strconv.ParseInt(p.Port, 10, 32); err == nil {
		port = manifest.PortValue{Number: int32(n)}
	}
	switch p.Type {
	case "http":
		if p.Port == "" {
			errs.add(name+".port", "is required for an HTTP check")
			return nil
		}
		return &manifest.Probe{HTTPGet: &manifest.HTTPGetAction{Path: p.Path, Port: port}}
	case "tcp":
		if p.Port == "" {
			errs.add(name+".port", "is required for a TCP check")
			return nil
		}
		return &manifest.Probe{TCPSocket: &manifest.PortAction{Port: port}}
	}
	return nil
}

// inputFor maps an error field of the core onto the input that holds it.
func inputFor(field string) string {
	for _, probe := range []string{"readiness_probe", "liveness_probe"} {
		switch field {
		case probe + ".http_get.path":
			return probe + ".path"
		case probe + ".http_get.port", probe + ".tcp_socket.port", probe + ".grpc.port":
			return probe + ".port"
		case probe:
			return probe + ".type"
		}
	}
	if m := regexp.MustCompile(`^env\[(\d+)\]$`).FindStringSubmatch(field); m != nil {
		return "env[" + m[1] + "].source"
	}
	return field
}
