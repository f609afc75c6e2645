package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateNamesTheField(t *testing.T) {
	t.Parallel()
	base := func() Form {
		return Form{App: "api", Image: "ghcr.io/acme/api", Tag: "1.0.0", Ports: []Port{{ContainerPort: 8080}}}
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		kind  string
		edit  func(*Form)
		field string
	}{
		{"app with ..", KindMicroservice, func(f *Form) { f.App = ".." }, "app"},
		{"app with a slash", KindMicroservice, func(f *Form) { f.App = "a/b" }, "app"},
		{"app with a path escape", KindMicroservice, func(f *Form) { f.App = "../../etc" }, "app"},
		{"absolute app", KindMicroservice, func(f *Form) { f.App = "/etc/passwd" }, "app"},
		{"upper-case app", KindMicroservice, func(f *Form) { f.App = "Api" }, "app"},
		{"app with a dot", KindMicroservice, func(f *Form) { f.App = "api.v2" }, "app"},
		{"app too long", KindMicroservice, func(f *Form) { f.App = "a123456789012345678901234567890123456789012345678901234567890123" }, "app"},
		{"cron app too long", KindCronJob, func(f *Form) {
			f.App, f.Ports, f.Schedule = "a12345678901234567890123456789012345678901234567890123", nil, "@daily"
		}, "app"},
		{"missing app", KindMicroservice, func(f *Form) { f.App = "" }, "app"},
		{"bad namespace", KindMicroservice, func(f *Form) { f.Namespace = "../kube-system" }, "namespace"},
		{"missing image", KindMicroservice, func(f *Form) { f.Image = "" }, "image"},
		{"bad image", KindMicroservice, func(f *Form) { f.Image = "ghcr.io/Acme/API!" }, "image"},
		{"image with tag", KindMicroservice, func(f *Form) { f.Image = "nginx:1.27" }, "image"},
		{"missing tag", KindMicroservice, func(f *Form) { f.Tag = "" }, "tag"},
		{"bad tag", KindMicroservice, func(f *Form) { f.Tag = "-x" }, "tag"},
		{"latest", KindMicroservice, func(f *Form) { f.Tag = "latest" }, "tag"},
		{"negative replicas", KindMicroservice, func(f *Form) { f.Replicas = ptr32(-1) }, "replicas"},
		{"no ports", KindMicroservice, func(f *Form) { f.Ports = nil }, "ports"},
		{"port 0", KindMicroservice, func(f *Form) { f.Ports[0].ContainerPort = 0 }, "ports[0].container_port"},
		{"port 70000", KindMicroservice, func(f *Form) { f.Ports[0].ContainerPort = 70000 }, "ports[0].container_port"},
		{"duplicate port", KindMicroservice, func(f *Form) { f.Ports = append(f.Ports, Port{Name: "b", ContainerPort: 8080}) }, "ports[1].container_port"},
		{"bad port name", KindMicroservice, func(f *Form) { f.Ports[0].Name = "HTTP_PORT" }, "ports[0].name"},
		{"bad protocol", KindMicroservice, func(f *Form) { f.Ports[0].Protocol = "ICMP" }, "ports[0].protocol"},
		{"bad env name", KindMicroservice, func(f *Form) { f.Env = []EnvVar{{Name: "A=B", Value: str("x")}} }, "env[0].name"},
		{"env value and ref", KindMicroservice, func(f *Form) {
			f.Env = []EnvVar{{Name: "A", Value: str("x"), SecretKeyRef: &SecretKeyRef{Name: "s", Key: "k"}}}
		}, "env[0]"},
		{"bad secret name", KindMicroservice, func(f *Form) { f.Env = []EnvVar{{Name: "A", SecretKeyRef: &SecretKeyRef{Name: "../s", Key: "k"}}} }, "env[0].secret_key_ref.name"},
		{"bad quantity", KindMicroservice, func(f *Form) { f.Resources = &Resources{Requests: map[string]string{"cpu": "lots"}} }, "resources.requests.cpu"},
		{"unknown resource", KindMicroservice, func(f *Form) { f.Resources = &Resources{Limits: map[string]string{"gpu": "1"}} }, "resources.limits.gpu"},
		{"limit below request", KindMicroservice, func(f *Form) {
			f.Resources = &Resources{Requests: map[string]string{"memory": "1Gi"}, Limits: map[string]string{"memory": "512Mi"}}
		}, "resources.limits.memory"},
		{"probe on unknown port", KindMicroservice, func(f *Form) { f.LivenessProbe = &Probe{TCPSocket: &PortAction{Port: PortValue{Number: 9999}}} }, "liveness_probe.tcp_socket.port"},
		{"probe with two actions", KindMicroservice, func(f *Form) {
			f.ReadinessProbe = &Probe{Exec: []string{"true"}, TCPSocket: &PortAction{Port: PortValue{Number: 8080}}}
		}, "readiness_probe"},
		{"probe path", KindMicroservice, func(f *Form) {
			f.ReadinessProbe = &Probe{HTTPGet: &HTTPGetAction{Path: "healthz", Port: PortValue{Name: "http"}}}
		}, "readiness_probe.http_get.path"},
		{"schedule on a service", KindMicroservice, func(f *Form) { f.Schedule = "@daily" }, "schedule"},
		{"missing schedule", KindCronJob, func(f *Form) { f.Ports = nil }, "schedule"},
		{"bad schedule", KindCronJob, func(f *Form) { f.Ports, f.Schedule = nil, "every day" }, "schedule"},
		{"six-field schedule", KindCronJob, func(f *Form) { f.Ports, f.Schedule = nil, "0 0 1 * * *" }, "schedule"},
		{"bad time zone", KindCronJob, func(f *Form) { f.Ports, f.Schedule, f.TimeZone = nil, "@daily", "Mars/Olympus" }, "time_zone"},
		{"cron with ports", KindCronJob, func(f *Form) { f.Schedule = "@daily" }, "ports"},
		{"web app without host", KindWebApp, func(f *Form) {}, "ingress.host"},
		{"bad host", KindWebApp, func(f *Form) { f.Ingress = &Ingress{Host: "not a host"} }, "ingress.host"},
		{"max below min", KindWebApp, func(f *Form) {
			f.Ingress, f.Replicas, f.Autoscaling = &Ingress{Host: "a.example.com"}, ptr32(4), &Autoscaling{MaxReplicas: 2}
		}, "autoscaling.max_replicas"},
		{"root user", KindMicroservice, func(f *Form) { f.RunAsUser = ptr64(0) }, "run_as_user"},
		{"unknown template", "helm", func(f *Form) {}, "template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base()
			tt.edit(&f)
			err := f.Validate(tt.kind)
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "want a *FieldError, got %v", err)
			require.Equal(t, tt.field, fe.Field, fe.Error())
		})
	}
	f := base()
	require.NoError(t, f.Validate(KindMicroservice))
}

func TestValidateTemplateAllowsMissingDeployFields(t *testing.T) {
	t.Parallel()
	f := Form{Replicas: ptr32(3), Resources: &Resources{Requests: map[string]string{"cpu": "1"}}}
	require.NoError(t, f.ValidateTemplate(KindWebApp))
	require.NoError(t, (&Form{}).ValidateTemplate(KindCronJob))
	require.Error(t, (&Form{App: "../x"}).ValidateTemplate(KindCronJob))
}

func TestDiff(t *testing.T) {
	t.Parallel()
	prev := Form{App: "api", Image: "ghcr.io/acme/api", Tag: "1.4.2", Replicas: ptr32(2), Ports: []Port{{ContainerPort: 8080}}}
	cur := prev
	cur.Tag, cur.Replicas = "1.4.3", ptr32(3)
	v := "debug"
	cur.Env = []EnvVar{{Name: "LOG_LEVEL", Value: &v}}
	texts := func(cs []Change) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.Text
		}
		return out
	}
	require.Equal(t, []string{"image 1.4.2 → 1.4.3", "replicas 2 → 3", "env LOG_LEVEL added"}, texts(Diff(KindMicroservice, &prev, KindMicroservice, cur)))
	require.Empty(t, Diff(KindMicroservice, &prev, KindMicroservice, prev))
	// A default spelled out is no change.
	explicit := prev
	explicit.Ports = []Port{{Name: "http", ContainerPort: 8080, ServicePort: 8080, Protocol: "TCP"}}
	require.Empty(t, Diff(KindMicroservice, &prev, KindMicroservice, explicit))
	require.Equal(t, []string{"new microservice", "image ghcr.io/acme/api:1.4.2", "replicas 2"}, texts(Diff("", nil, KindMicroservice, prev)))
	require.Contains(t, texts(Diff(KindMicroservice, &prev, KindWebApp, prev)), "template microservice → web-app")
}

// TestHelmApp: a helm-app renders no manifests (its chart is the workload), takes no workload
// fields, names a Helm release (53 characters at most), and diffs as a change of template.
func TestHelmApp(t *testing.T) {
	t.Parallel()
	files, err := Render(KindHelmApp, Form{App: "shop"}, Options{Namespace: "shop-dev"})
	require.NoError(t, err)
	require.Empty(t, files)
	require.NoError(t, (&Form{}).ValidateTemplate(KindHelmApp))
	for _, tt := range []struct {
		form  Form
		field string
	}{
		{Form{}, "app"},
		{Form{App: strings.Repeat("a", 54)}, "app"},
		{Form{App: "shop", Image: "nginx", Tag: "1"}, "image"},
		{Form{App: "shop", Replicas: ptr32(2)}, "replicas"},
		{Form{App: "shop", Ports: []Port{{ContainerPort: 8080}}}, "ports"},
		{Form{App: "shop", ImageAutomation: &ImageAutomation{SemVer: "^1"}}, "image_automation"},
	} {
		err := tt.form.Validate(KindHelmApp)
		var fe *FieldError
		require.ErrorAs(t, err, &fe, "%+v", tt.form)
		require.Equal(t, tt.field, fe.Field, "%v", err)
	}
	texts := func(cs []Change) (out []string) {
		for _, c := range cs {
			out = append(out, c.Text)
		}
		return out
	}
	shop := Form{App: "shop"}
	micro := Form{App: "shop", Image: "ghcr.io/acme/shop", Tag: "1", Ports: []Port{{ContainerPort: 8080}}}
	require.Equal(t, []string{"new helm-app"}, texts(Diff("", nil, KindHelmApp, shop)))
	require.Empty(t, Diff(KindHelmApp, &shop, KindHelmApp, shop))
	require.Equal(t, []string{"template microservice → helm-app"}, texts(Diff(KindMicroservice, &micro, KindHelmApp, shop)))
}
