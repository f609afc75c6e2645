package manifest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Limits of a form.
const (
	maxAppLen        = 63   // a DNS label
	maxCronAppLen    = 52   // CronJob names get an 11-character suffix for their Jobs
	maxHelmAppLen    = 53   // a helm-app's name is its Helm release name, which Helm caps
	maxReplicas      = 1000 // pods
	maxPorts         = 32
	maxEnv           = 200
	maxEnvValueBytes = 32 << 10 // 32 KiB per value
	maxArgs          = 64       // entries of command, args, exec
	maxArgBytes      = 4 << 10  // 4 KiB per entry
	maxProbeSeconds  = 3600
	maxFailures      = 100
)

// resourceNames are the resources a form may request or limit.
var resourceNames = []string{"cpu", "memory", "ephemeral-storage"}

// tagRE is the OCI distribution spec's tag grammar.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// cronParser accepts what a Kubernetes CronJob accepts: five fields or a @descriptor.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks a complete form for template kind and returns the first problem as a
// *FieldError naming the field. Names that could escape the app's directory or are not
// valid Kubernetes names ("..", "a/b", "/etc", "Api") are refused here, before any path is
// built from them.
func (f *Form) Validate(kind string) error {
	return f.validate(kind, false)
}

// ValidateTemplate checks a saved template's form: every field that is set must be valid, but
// fields a deploy fills in later (app, image, tag, schedule, ingress host) may be missing.
func (f *Form) ValidateTemplate(kind string) error {
	return f.validate(kind, true)
}

func (f *Form) validate(kind string, partial bool) error {
	if !IsKind(kind) {
		return fieldErr("template", "must be one of %s, got %q", strings.Join(Kinds(), ", "), kind)
	}
	if err := checkApp(f.App, kind, partial); err != nil {
		return err
	}
	if f.Namespace != "" {
		if msgs := validation.IsDNS1123Label(f.Namespace); len(msgs) > 0 {
			return fieldErr("namespace", "%q is not a valid namespace: %s", f.Namespace, msgs[0])
		}
	}
	if kind == KindHelmApp {
		return f.checkHelmApp()
	}
	if err := checkImage(f.Image, f.Tag, partial); err != nil {
		return err
	}
	if f.Replicas != nil && (*f.Replicas < 0 || *f.Replicas > maxReplicas) {
		return fieldErr("replicas", "must be between 0 and %d, got %d", maxReplicas, *f.Replicas)
	}
	if f.RunAsUser != nil && (*f.RunAsUser < 1 || *f.RunAsUser > 1<<31-1) {
		return fieldErr("run_as_user", "must be a non-root UID between 1 and %d, got %d", 1<<31-1, *f.RunAsUser)
	}
	if err := checkStrings("command", f.Command); err != nil {
		return err
	}
	if err := checkStrings("args", f.Args); err != nil {
		return err
	}
	if err := f.checkPorts(kind, partial); err != nil {
		return err
	}
	if err := checkEnv(f.Env); err != nil {
		return err
	}
	if err := checkResources(f.Resources); err != nil {
		return err
	}
	if err := f.checkProbe("liveness_probe", f.LivenessProbe, kind); err != nil {
		return err
	}
	if err := f.checkProbe("readiness_probe", f.ReadinessProbe, kind); err != nil {
		return err
	}
	if err := f.checkSchedule(kind, partial); err != nil {
		return err
	}
	if err := f.checkIngress(kind, partial); err != nil {
		return err
	}
	if err := f.checkImageAutomation(); err != nil {
		return err
	}
	return f.checkAutoscaling(kind)
}

func checkApp(app, kind string, partial bool) error {
	if app == "" {
		if partial {
			return nil
		}
		return fieldErr("app", "is required")
	}
	switch {
	case strings.Contains(app, "/") || strings.Contains(app, `\`):
		return fieldErr("app", "%q must be a single name, not a path", app)
	case strings.Contains(app, ".."):
		return fieldErr("app", "%q must not contain \"..\"", app)
	case app == NamespacesDir:
		return fieldErr("app", "%q is the directory of the environment's Namespace files; choose another name", app)
	}
	if msgs := validation.IsDNS1123Label(app); len(msgs) > 0 {
		return fieldErr("app", "%q is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most %d characters)", app, maxAppLen)
	}
	if kind == KindCronJob && len(app) > maxCronAppLen {
		return fieldErr("app", "a cron job's name must be at most %d characters, got %d", maxCronAppLen, len(app))
	}
	if kind == KindHelmApp && len(app) > maxHelmAppLen {
		return fieldErr("app", "a helm-app's name is its Helm release name: at most %d characters, got %d", maxHelmAppLen, len(app))
	}
	return nil
}

// checkHelmApp refuses the workload fields on a helm-app: its chart makes the workload, so an
// image, ports or probes here would be silently ignored.
func (f *Form) checkHelmApp() error {
	set := []struct {
		field string
		isSet bool
	}{
		{"image", f.Image != ""}, {"tag", f.Tag != ""}, {"replicas", f.Replicas != nil}, {"ports", len(f.Ports) > 0},
		{"env", len(f.Env) > 0}, {"resources", f.Resources != nil}, {"liveness_probe", f.LivenessProbe != nil},
		{"readiness_probe", f.ReadinessProbe != nil}, {"command", len(f.Command) > 0}, {"args", len(f.Args) > 0},
		{"schedule", f.Schedule != ""}, {"time_zone", f.TimeZone != ""}, {"ingress", f.Ingress != nil},
		{"autoscaling", f.Autoscaling != nil}, {"run_as_user", f.RunAsUser != nil}, {"image_automation", f.ImageAutomation != nil},
	}
	for _, s := range set {
		if s.isSet {
			return fieldErr(s.field, "a helm-app's workload comes from its chart: set this in the chart's values (flux.helmRelease.values) instead")
		}
	}
	return nil
}

func checkImage(image, tag string, partial bool) error {
	if image == "" {
		if partial && tag == "" {
			return nil
		}
		return fieldErr("image", "is required, e.g. ghcr.io/acme/api")
	}
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return fieldErr("image", "%q is not an image reference: %v", image, err)
	}
	_, hasDigest := ref.(reference.Digested)
	if _, ok := ref.(reference.Tagged); ok {
		return fieldErr("image", "%q carries a tag; put the tag in the tag field", image)
	}
	switch {
	case tag == "" && !hasDigest && !partial:
		return fieldErr("tag", "is required (or pin the image by digest)")
	case tag != "" && !tagRE.MatchString(tag):
		return fieldErr("tag", "%q is not a valid image tag", tag)
	case tag == "latest":
		return fieldErr("tag", "\"latest\" is not a version: Git would not change when the image does; use a version tag")
	}
	return nil
}

func checkStrings(field string, ss []string) error {
	if len(ss) > maxArgs {
		return fieldErr(field, "at most %d entries, got %d", maxArgs, len(ss))
	}
	for i, s := range ss {
		if len(s) > maxArgBytes {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "at most %d bytes", maxArgBytes)
		}
	}
	return nil
}

func (f *Form) checkPorts(kind string, partial bool) error {
	if kind == KindCronJob {
		if len(f.Ports) > 0 {
			return fieldErr("ports", "a cron job serves no ports")
		}
		return nil
	}
	if len(f.Ports) == 0 && !partial {
		return fieldErr("ports", "a %s needs at least one container port", kind)
	}
	if len(f.Ports) > maxPorts {
		return fieldErr("ports", "at most %d ports, got %d", maxPorts, len(f.Ports))
	}
	names, numbers, svc := map[string]bool{}, map[int32]bool{}, map[int32]bool{}
	for i, p := range f.Ports {
		field := fmt.Sprintf("ports[%d]", i)
		if p.ContainerPort < 1 || p.ContainerPort > 65535 {
			return fieldErr(field+".container_port", "must be between 1 and 65535, got %d", p.ContainerPort)
		}
		if p.ServicePort != 0 && (p.ServicePort < 1 || p.ServicePort > 65535) {
			return fieldErr(field+".service_port", "must be between 1 and 65535, got %d", p.ServicePort)
		}
		if p.Name != "" {
			if msgs := validation.IsValidPortName(p.Name); len(msgs) > 0 {
				return fieldErr(field+".name", "%q is not a port name: %s", p.Name, msgs[0])
			}
		}
		switch p.Protocol {
		case "", "TCP", "UDP", "SCTP":
		default:
			return fieldErr(field+".protocol", "must be TCP, UDP or SCTP, got %q", p.Protocol)
		}
		n := portName(p, i)
		sp := p.ServicePort
		if sp == 0 {
			sp = p.ContainerPort
		}
		switch {
		case names[n]:
			return fieldErr(field+".name", "%q is used twice", n)
		case numbers[p.ContainerPort]:
			return fieldErr(field+".container_port", "%d is used twice", p.ContainerPort)
		case svc[sp]:
			return fieldErr(field+".service_port", "%d is used twice", sp)
		}
		names[n], numbers[p.ContainerPort], svc[sp] = true, true, true
	}
	return nil
}

func checkEnv(env []EnvVar) error {
	if len(env) > maxEnv {
		return fieldErr("env", "at most %d variables, got %d", maxEnv, len(env))
	}
	seen := map[string]bool{}
	for i, e := range env {
		field := fmt.Sprintf("env[%d]", i)
		if msgs := validation.IsEnvVarName(e.Name); e.Name == "" || len(msgs) > 0 {
			return fieldErr(field+".name", "%q is not a valid variable name", e.Name)
		}
		if seen[e.Name] {
			return fieldErr(field+".name", "%q is set twice", e.Name)
		}
		seen[e.Name] = true
		switch {
		case (e.Value == nil) == (e.SecretKeyRef == nil):
			return fieldErr(field, "set exactly one of value and secret_key_ref")
		case e.Value != nil && len(*e.Value) > maxEnvValueBytes:
			return fieldErr(field+".value", "at most %d bytes", maxEnvValueBytes)
		case e.SecretKeyRef != nil:
			if msgs := validation.IsDNS1123Subdomain(e.SecretKeyRef.Name); len(msgs) > 0 {
				return fieldErr(field+".secret_key_ref.name", "%q is not a Secret name", e.SecretKeyRef.Name)
			}
			if msgs := validation.IsConfigMapKey(e.SecretKeyRef.Key); len(msgs) > 0 {
				return fieldErr(field+".secret_key_ref.key", "%q is not a Secret key", e.SecretKeyRef.Key)
			}
		}
	}
	return nil
}

func checkResources(r *Resources) error {
	if r == nil {
		return nil
	}
	for _, part := range []struct {
		name string
		m    map[string]string
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, k := range slices.Sorted(maps.Keys(part.m)) {
			v := part.m[k]
			field := "resources." + part.name + "." + k
			if !slices.Contains(resourceNames, k) {
				return fieldErr(field, "unknown resource; want one of %s", strings.Join(resourceNames, ", "))
			}
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return fieldErr(field, "%q is not a quantity (e.g. 250m, 512Mi)", v)
			}
			if q.Sign() <= 0 {
				return fieldErr(field, "must be greater than zero, got %q", v)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Limits)) {
		lv := r.Limits[k]
		rv, ok := r.Requests[k]
		if !ok {
			continue
		}
		if cmpQuantity(lv, rv) < 0 {
			return fieldErr("resources.limits."+k, "%s is below the request %s", lv, rv)
		}
	}
	return nil
}

func (f *Form) checkProbe(field string, p *Probe, kind string) error {
	if p == nil {
		return nil
	}
	if kind == KindCronJob {
		return fieldErr(field, "a cron job takes no probes")
	}
	n := 0
	if p.HTTPGet != nil {
		n++
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			return fieldErr(field+".http_get.path", "must start with /, got %q", p.HTTPGet.Path)
		}
		if err := f.checkPortRef(field+".http_get.port", p.HTTPGet.Port); err != nil {
			return err
		}
	}
	if p.TCPSocket != nil {
		n++
		if err := f.checkPortRef(field+".tcp_socket.port", p.TCPSocket.Port); err != nil {
			return err
		}
	}
	if p.GRPC != nil {
		n++
		if p.GRPC.Port.Name != "" {
			return fieldErr(field+".grpc.port", "must be a number")
		}
		if err := f.checkPortRef(field+".grpc.port", p.GRPC.Port); err != nil {
			return err
		}
	}
	if len(p.Exec) > 0 {
		n++
		if err := checkStrings(field+".exec", p.Exec); err != nil {
			return err
		}
	}
	if n != 1 {
		return fieldErr(field, "set exactly one of http_get, tcp_socket, grpc and exec")
	}
	for _, s := range []struct {
		name string
		v    int32
	}{{"initial_delay_seconds", p.InitialDelaySeconds}, {"period_seconds", p.PeriodSeconds}, {"timeout_seconds", p.TimeoutSeconds}} {
		if s.v < 0 || s.v > maxProbeSeconds {
			return fieldErr(field+"."+s.name, "must be between 0 and %d, got %d", maxProbeSeconds, s.v)
		}
	}
	if p.FailureThreshold < 0 || p.FailureThreshold > maxFailures {
		return fieldErr(field+".failure_threshold", "must be between 0 and %d, got %d", maxFailures, p.FailureThreshold)
	}
	return nil
}

// checkPortRef checks that a probe's port is one the container declares.
func (f *Form) checkPortRef(field string, pv PortValue) error {
	for i, p := range f.Ports {
		if (pv.Name != "" && pv.Name == portName(p, i)) || (pv.Name == "" && pv.Number == p.ContainerPort) {
			return nil
		}
	}
	if pv.Name == "" && (pv.Number < 1 || pv.Number > 65535) {
		return fieldErr(field, "must be between 1 and 65535, got %d", pv.Number)
	}
	if pv.Name == "" && len(f.Ports) == 0 {
		return nil // a template without ports yet
	}
	return fieldErr(field, "%s is not one of the container's ports", pv)
}

func (f *Form) checkSchedule(kind string, partial bool) error {
	if kind != KindCronJob {
		if f.Schedule != "" || f.TimeZone != "" {
			return fieldErr("schedule", "only a cron job has a schedule")
		}
		return nil
	}
	if f.Schedule == "" {
		if partial {
			return nil
		}
		return fieldErr("schedule", "is required for a cron job, e.g. \"*/15 * * * *\"")
	}
	if strings.Contains(f.Schedule, "TZ") {
		return fieldErr("schedule", "set the time zone in time_zone, not in the schedule")
	}
	if _, err := cronParser.Parse(f.Schedule); err != nil {
		return fieldErr("schedule", "%q is not a cron schedule (minute hour day-of-month month day-of-week): %v", f.Schedule, err)
	}
	if f.TimeZone != "" {
		if _, err := time.LoadLocation(f.TimeZone); err != nil || f.TimeZone == "Local" {
			return fieldErr("time_zone", "%q is not an IANA time zone", f.TimeZone)
		}
	}
	return nil
}

func (f *Form) checkIngress(kind string, partial bool) error {
	in := f.Ingress
	if kind != KindWebApp {
		if in != nil {
			return fieldErr("ingress", "only a web-app has an ingress")
		}
		return nil
	}
	if in == nil || in.Host == "" {
		if partial {
			return nil
		}
		return fieldErr("ingress.host", "is required for a web-app")
	}
	host := strings.TrimPrefix(in.Host, "*.")
	if msgs := validation.IsDNS1123Subdomain(host); len(msgs) > 0 || !strings.Contains(host, ".") {
		return fieldErr("ingress.host", "%q is not a DNS name", in.Host)
	}
	if in.Path != "" && (!strings.HasPrefix(in.Path, "/") || strings.ContainsAny(in.Path, " \t\n{}")) {
		return fieldErr("ingress.path", "must be a URL path starting with /, got %q", in.Path)
	}
	if in.ClassName != "" {
		if msgs := validation.IsDNS1123Subdomain(in.ClassName); len(msgs) > 0 {
			return fieldErr("ingress.class_name", "%q is not an ingress class name", in.ClassName)
		}
	}
	if in.TLSSecret != "" {
		if msgs := validation.IsDNS1123Subdomain(in.TLSSecret); len(msgs) > 0 {
			return fieldErr("ingress.tls_secret", "%q is not a Secret name", in.TLSSecret)
		}
	}
	return nil
}

func (f *Form) checkAutoscaling(kind string) error {
	a := f.Autoscaling
	if kind != KindWebApp {
		if a != nil {
			return fieldErr("autoscaling", "only a web-app autoscales")
		}
		return nil
	}
	if f.Replicas != nil && *f.Replicas < 1 {
		return fieldErr("replicas", "a web-app needs at least 1 replica (the autoscaler's minimum)")
	}
	if a == nil {
		return nil
	}
	min := int32(defaultReplicas)
	if f.Replicas != nil {
		min = *f.Replicas
	}
	if a.MaxReplicas != 0 && (a.MaxReplicas < min || a.MaxReplicas > maxReplicas) {
		return fieldErr("autoscaling.max_replicas", "must be between replicas (%d) and %d, got %d", min, maxReplicas, a.MaxReplicas)
	}
	if a.TargetCPUPercent < 0 || a.TargetCPUPercent > 100 {
		return fieldErr("autoscaling.target_cpu_percent", "must be between 1 and 100, got %d", a.TargetCPUPercent)
	}
	return nil
}
