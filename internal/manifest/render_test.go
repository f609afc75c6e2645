package manifest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// webForm is a web app form with most fields set.
func webForm() Form {
	v := "info"
	return Form{
		App: "api", Image: "ghcr.io/acme/api", Tag: "1.4.3", Replicas: ptr32(3),
		Ports: []Port{{ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
		Env: []EnvVar{
			{Name: "LOG_LEVEL", Value: &v},
			{Name: "DB_PASSWORD", SecretKeyRef: &SecretKeyRef{Name: "api-db", Key: "password"}},
		},
		Resources:      &Resources{Requests: map[string]string{"cpu": "250m", "memory": "512Mi"}},
		ReadinessProbe: &Probe{HTTPGet: &HTTPGetAction{Path: "/readyz", Port: PortValue{Name: "http"}}, PeriodSeconds: 5},
		Ingress:        &Ingress{Host: "api.example.com", TLSSecret: "api-tls", ClassName: "nginx"},
		Autoscaling:    &Autoscaling{MaxReplicas: 10},
	}
}

func ptr32(v int32) *int32 { return &v }

// golden compares the rendered files with testdata/<name>.golden, a YAML stream of
// "# <file>" sections; -update rewrites it.
func golden(t *testing.T, name string, files []File) {
	t.Helper()
	var b bytes.Buffer
	for _, f := range files {
		b.WriteString("# " + f.Name + "\n")
		b.Write(f.Content)
		b.WriteString("---\n")
	}
	p := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, string(want), b.String())
}

func TestRenderGolden(t *testing.T) {
	cron := Form{App: "nightly-report", Image: "ghcr.io/acme/report@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Schedule: "30 2 * * *", TimeZone: "Europe/Berlin", Args: []string{"--since", "24h"}}
	micro := Form{App: "worker", Image: "registry.example.com:5000/team/worker", Tag: "v2", Ports: []Port{{Name: "grpc", ContainerPort: 9000}},
		LivenessProbe: &Probe{GRPC: &PortAction{Port: PortValue{Number: 9000}}}, RunAsUser: ptr64(10001)}
	for _, tc := range []struct {
		name, kind string
		form       Form
	}{
		{"web-app", KindWebApp, webForm()},
		{"microservice", KindMicroservice, micro},
		{"cron-job", KindCronJob, cron},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Render(tc.kind, tc.form, Options{Namespace: "shop-prod"})
			require.NoError(t, err)
			golden(t, tc.name, files)
			// Every file is valid YAML of a typed object (or the kustomization).
			for _, f := range files {
				var m map[string]any
				require.NoError(t, yaml.Unmarshal(f.Content, &m), f.Name)
				require.NotContains(t, string(f.Content), "creationTimestamp")
				require.NotContains(t, string(f.Content), "status:")
			}
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	first, err := Render(KindWebApp, webForm(), Options{Namespace: "shop"})
	require.NoError(t, err)
	for range 20 {
		// A form that went through JSON (as stored in the database) renders the same bytes.
		b, err := json.Marshal(webForm())
		require.NoError(t, err)
		var f Form
		require.NoError(t, json.Unmarshal(b, &f))
		again, err := Render(KindWebApp, f, Options{Namespace: "shop"})
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
}

func TestRenderWebAppDefaults(t *testing.T) {
	t.Parallel()
	files, err := Render(KindWebApp, Form{App: "web", Image: "nginx", Tag: "1.27", Ports: []Port{{ContainerPort: 8080}},
		Ingress: &Ingress{Host: "web.example.com"}}, Options{Namespace: "shop"})
	require.NoError(t, err)
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	require.Equal(t, []string{FileDeployment, FileHPA, FileIngress, FileKustomization, FileService}, names)
	var d appsv1.Deployment
	require.NoError(t, yaml.UnmarshalStrict(files[0].Content[:], &d))
	require.Nil(t, d.Spec.Replicas, "the autoscaler owns the replica count")
	require.EqualValues(t, 600, *d.Spec.ProgressDeadlineSeconds)
	require.Equal(t, "0", d.Spec.Strategy.RollingUpdate.MaxUnavailable.String())
	c := d.Spec.Template.Spec.Containers[0]
	require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	require.True(t, *d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
	require.NotNil(t, c.LivenessProbe.TCPSocket)
	require.NotNil(t, c.ReadinessProbe.TCPSocket)
	require.Equal(t, "100m", c.Resources.Requests.Cpu().String())
	require.Equal(t, "256Mi", c.Resources.Limits.Memory().String())
}

func TestDefaultsNeverContradictTheForm(t *testing.T) {
	t.Parallel()
	r := resourcesWithDefaults(&Resources{Requests: map[string]string{"memory": "1Gi"}, Limits: map[string]string{"cpu": "50m"}})
	require.Equal(t, "1Gi", r.Limits["memory"], "a default limit below the request is raised to it")
	require.Equal(t, "50m", r.Requests["cpu"], "a default request above the limit is lowered to it")
}

func TestProposedFluxIsValidFluxSpelling(t *testing.T) {
	t.Parallel()
	d := ProposedFlux()
	for _, v := range []string{d.GitInterval, d.Interval, d.RetryInterval, d.Timeout} {
		_, err := time.ParseDuration(v)
		require.NoError(t, err, v)
	}
	require.True(t, d.Wait)
	require.True(t, d.Prune)
}

// TestRenderNamespace: the same bytes for every app of a namespace, a Namespace Flux never
// prunes, and a reserved app name.
func TestRenderNamespace(t *testing.T) {
	t.Parallel()
	a, err := RenderNamespace("shop-prod")
	require.NoError(t, err)
	b, err := RenderNamespace("shop-prod")
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, `apiVersion: v1
kind: Namespace
metadata:
  annotations:
    kustomize.toolkit.fluxcd.io/prune: disabled
  labels:
    app.kubernetes.io/managed-by: fluxbridge
  name: shop-prod
spec: {}
`, string(a))
	require.Equal(t, "clusters/prod/namespaces/shop-prod.yaml", NamespacePath("clusters/prod", "shop-prod"))
	require.Equal(t, "namespaces/shop-prod.yaml", NamespacePath("", "shop-prod"))
	_, err = RenderNamespace("Shop")
	require.Error(t, err)

	f := webForm()
	f.App = NamespacesDir
	var fe *FieldError
	require.ErrorAs(t, f.Validate(KindWebApp), &fe)
	require.Equal(t, "app", fe.Field)
}

func ptr64(v int64) *int64 { return &v }

func TestRenderImageSetter(t *testing.T) {
	f := webForm()
	f.ImageAutomation = &ImageAutomation{SemVer: ">=1.4.0 <2.0.0"}
	files, err := Render(KindWebApp, f, Options{Namespace: "shop", ImagePolicy: ImagePolicyRef("flux-system", "shop-prod-api")})
	require.NoError(t, err)
	var dep []byte
	for _, file := range files {
		if file.Name == FileDeployment {
			dep = file.Content
		}
		if file.Name != FileDeployment {
			require.NotContains(t, string(file.Content), "$imagepolicy")
		}
	}
	require.Contains(t, string(dep), "\n        image: ghcr.io/acme/api:1.4.3 # {\"$imagepolicy\": \"flux-system:shop-prod-api\"}\n")
	var d appsv1.Deployment
	require.NoError(t, yaml.Unmarshal(dep, &d), "still valid YAML")
	require.Equal(t, "ghcr.io/acme/api:1.4.3", d.Spec.Template.Spec.Containers[0].Image)

	cron := Form{App: "report", Image: "ghcr.io/acme/report", Tag: "2.0.0", Schedule: "@hourly", ImageAutomation: &ImageAutomation{SemVer: "^2"}}
	files, err = Render(KindCronJob, cron, Options{Namespace: "shop", ImagePolicy: "flux-system:shop-prod-report"})
	require.NoError(t, err)
	require.Contains(t, string(files[0].Content), `image: ghcr.io/acme/report:2.0.0 # {"$imagepolicy": "flux-system:shop-prod-report"}`)

	_, err = Render(KindWebApp, f, Options{Namespace: "shop"})
	require.ErrorContains(t, err, "Options.ImagePolicy")
}

func TestImageAutomationValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		form  func(*Form)
		field string
	}{
		"no range":       {func(f *Form) { f.ImageAutomation = &ImageAutomation{} }, "image_automation.semver"},
		"bad range":      {func(f *Form) { f.ImageAutomation = &ImageAutomation{SemVer: "newest"} }, "image_automation.semver"},
		"scan too often": {func(f *Form) { f.ImageAutomation = &ImageAutomation{SemVer: "^1", ScanInterval: "1s"} }, "image_automation.scan_interval"},
		"not a duration": {func(f *Form) { f.ImageAutomation = &ImageAutomation{SemVer: "^1", ScanInterval: "hourly"} }, "image_automation.scan_interval"},
		"pinned by digest": {func(f *Form) {
			f.Image, f.Tag = "ghcr.io/acme/api@sha256:"+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ""
			f.ImageAutomation = &ImageAutomation{SemVer: "^1"}
		}, "image_automation"},
	} {
		t.Run(name, func(t *testing.T) {
			f := webForm()
			tc.form(&f)
			err := f.Validate(KindWebApp)
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tc.field, fe.Field)
		})
	}
	f := webForm()
	f.ImageAutomation = &ImageAutomation{SemVer: "~1.4", ScanInterval: "1m"}
	require.NoError(t, f.Validate(KindWebApp))

	prev := webForm()
	require.Equal(t, []Change{{Field: "image_automation", Text: "image automation on (~1.4)"}}, Diff(KindWebApp, &prev, KindWebApp, f))
	require.Equal(t, []Change{{Field: "image_automation", Text: "image automation off"}}, Diff(KindWebApp, &f, KindWebApp, prev))
}
