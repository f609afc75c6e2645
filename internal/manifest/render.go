package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// File names Render writes in an app's directory.
const (
	FileKustomization = "kustomization.yaml"
	FileDeployment    = "deployment.yaml"
	FileService       = "service.yaml"
	FileIngress       = "ingress.yaml"
	FileHPA           = "hpa.yaml"
	FileCronJob       = "cronjob.yaml"
)

// FileNames returns every file name Render may write, so that a caller can delete the ones a
// new kind no longer needs (a web-app turned microservice loses its ingress and autoscaler).
func FileNames() []string {
	return []string{FileCronJob, FileDeployment, FileHPA, FileIngress, FileKustomization, FileService}
}

// File is one rendered file, named relative to the app's directory.
type File struct {
	Name    string
	Content []byte
}

// Options are the rendering settings that come from the environment, not the form.
type Options struct {
	// Namespace is used when the form names none; it must be a DNS label.
	Namespace string
	// ImagePolicy is "<namespace>:<name>" of the app's ImagePolicy, required when the form
	// asks for image automation: the image line gets its setter comment.
	ImagePolicy string
}

// managedBy labels every object, so kubectl can list what fluxbridge deploys.
const managedBy = "fluxbridge"

// Render validates f for template kind and returns the app's files, sorted by name: one
// manifest per object plus a kustomization.yaml listing them. A helm-app has no files (its
// HelmRelease is a Flux object fluxbridge applies, not a manifest in Git), so a deploy of one
// removes whatever manifests the app's directory held. A form that fails validation returns
// its *FieldError and no files.
func Render(kind string, f Form, o Options) ([]File, error) {
	if err := f.Validate(kind); err != nil {
		return nil, err
	}
	if kind == KindHelmApp {
		return []File{}, nil
	}
	ns := f.Namespace
	if ns == "" {
		ns = o.Namespace
	}
	if ns == "" {
		return nil, fieldErr("namespace", "is required: the environment sets no default namespace")
	}
	e := f.withDefaults(kind)
	r := &renderer{f: e, meta: metav1.ObjectMeta{Name: e.App, Namespace: ns, Labels: labels(e.App)}}
	objs := map[string]any{}
	switch kind {
	case KindWebApp:
		objs[FileDeployment] = r.deployment(false)
		objs[FileService] = r.service()
		objs[FileIngress] = r.ingress()
		objs[FileHPA] = r.hpa()
	case KindMicroservice:
		objs[FileDeployment] = r.deployment(true)
		objs[FileService] = r.service()
	case KindCronJob:
		objs[FileCronJob] = r.cronJob()
	}
	names := slices.Sorted(maps.Keys(objs))
	objs[FileKustomization] = kustomization{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: names}
	out := make([]File, 0, len(objs))
	for _, name := range slices.Sorted(maps.Keys(objs)) {
		b, err := toYAML(objs[name])
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", name, err)
		}
		if e.ImageAutomation != nil && (name == FileDeployment || name == FileCronJob) {
			if b, err = markImageSetter(b, imageRef(e.Image, e.Tag), o.ImagePolicy); err != nil {
				return nil, fmt.Errorf("render %s: %w", name, err)
			}
		}
		out = append(out, File{Name: name, Content: b})
	}
	return out, nil
}

// kustomization is kustomize's file format, reduced to what an app directory needs.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

func labels(app string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": managedBy}
}

func selector(app string) map[string]string {
	return map[string]string{"app.kubernetes.io/name": app}
}

type renderer struct {
	f    Form
	meta metav1.ObjectMeta
}

// deployment renders the Deployment; withReplicas is false when an autoscaler owns the count,
// so Flux does not fight the autoscaler on every reconcile.
func (r *renderer) deployment(withReplicas bool) *appsv1.Deployment {
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: r.meta,
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector(r.f.App)},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromString("25%")),
				},
			},
			ProgressDeadlineSeconds: ptr.To[int32](defaultProgressDeadline),
			RevisionHistoryLimit:    ptr.To[int32](defaultRevisionHistory),
			Template:                r.podTemplate(corev1.RestartPolicyAlways),
		},
	}
	if withReplicas {
		d.Spec.Replicas = r.f.Replicas
	}
	return d
}

func (r *renderer) podTemplate(restart corev1.RestartPolicy) corev1.PodTemplateSpec {
	f := r.f
	c := corev1.Container{
		Name:            f.App,
		Image:           imageRef(f.Image, f.Tag),
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         f.Command,
		Args:            f.Args,
		Resources:       resourceRequirements(f.Resources),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		// A read-only root filesystem still needs somewhere to write temporary files.
		VolumeMounts:   []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
		LivenessProbe:  r.probe(f.LivenessProbe),
		ReadinessProbe: r.probe(f.ReadinessProbe),
	}
	for _, p := range f.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.ContainerPort, Protocol: corev1.Protocol(p.Protocol)})
	}
	for _, e := range f.Env {
		v := corev1.EnvVar{Name: e.Name}
		if e.SecretKeyRef != nil {
			ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: e.SecretKeyRef.Name}, Key: e.SecretKeyRef.Key}
			if e.SecretKeyRef.Optional {
				ref.Optional = ptr.To(true)
			}
			v.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: ref}
		} else {
			v.Value = *e.Value
		}
		c.Env = append(c.Env, v)
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels(f.App)},
		Spec: corev1.PodSpec{
			Containers:                   []corev1.Container{c},
			RestartPolicy:                restart,
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      f.RunAsUser,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
}

func (r *renderer) probe(p *Probe) *corev1.Probe {
	if p == nil {
		return nil
	}
	out := &corev1.Probe{
		InitialDelaySeconds: p.InitialDelaySeconds, PeriodSeconds: p.PeriodSeconds,
		TimeoutSeconds: p.TimeoutSeconds, FailureThreshold: p.FailureThreshold,
	}
	switch {
	case p.HTTPGet != nil:
		out.HTTPGet = &corev1.HTTPGetAction{Path: p.HTTPGet.Path, Port: intOrString(p.HTTPGet.Port)}
	case p.TCPSocket != nil:
		out.TCPSocket = &corev1.TCPSocketAction{Port: intOrString(p.TCPSocket.Port)}
	case p.GRPC != nil:
		out.GRPC = &corev1.GRPCAction{Port: p.GRPC.Port.Number}
	default:
		out.Exec = &corev1.ExecAction{Command: p.Exec}
	}
	return out
}

func (r *renderer) service() *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: r.meta,
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: selector(r.f.App)},
	}
	for _, p := range r.f.Ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name: p.Name, Port: p.ServicePort, TargetPort: intstr.FromString(p.Name), Protocol: corev1.Protocol(p.Protocol),
		})
	}
	return s
}

func (r *renderer) ingress() *networkingv1.Ingress {
	in := r.f.Ingress
	ing := &networkingv1.Ingress{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "Ingress"},
		ObjectMeta: r.meta,
		Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{
				Host: in.Host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path:     in.Path,
						PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: r.f.App, Port: networkingv1.ServiceBackendPort{Name: r.f.Ports[0].Name},
						}},
					}},
				}},
			}},
		},
	}
	if in.ClassName != "" {
		ing.Spec.IngressClassName = ptr.To(in.ClassName)
	}
	if in.TLSSecret != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{in.Host}, SecretName: in.TLSSecret}}
	}
	return ing
}

func (r *renderer) hpa() *autoscalingv2.HorizontalPodAutoscaler {
	a := r.f.Autoscaling
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: r.meta,
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: r.f.App},
			MinReplicas:    r.f.Replicas,
			MaxReplicas:    a.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(a.TargetCPUPercent)},
				},
			}},
		},
	}
}

func (r *renderer) cronJob() *batchv1.CronJob {
	cj := &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: r.meta,
		Spec: batchv1.CronJobSpec{
			Schedule:                   r.f.Schedule,
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To[int64](defaultStartingDeadline),
			SuccessfulJobsHistoryLimit: ptr.To[int32](defaultSuccessHistory),
			FailedJobsHistoryLimit:     ptr.To[int32](defaultFailedHistory),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels(r.f.App)},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](defaultJobBackoffLimit),
					Template:     r.podTemplate(corev1.RestartPolicyNever),
				},
			},
		},
	}
	if r.f.TimeZone != "" {
		cj.Spec.TimeZone = ptr.To(r.f.TimeZone)
	}
	return cj
}

// imageRef joins an image and its tag; an image pinned by digest is used as it is.
func imageRef(image, tag string) string {
	if tag == "" {
		return image
	}
	return image + ":" + tag
}

func intOrString(p PortValue) intstr.IntOrString {
	if p.Name != "" {
		return intstr.FromString(p.Name)
	}
	return intstr.FromInt32(p.Number)
}

func resourceRequirements(r *Resources) corev1.ResourceRequirements {
	list := func(m map[string]string) corev1.ResourceList {
		if len(m) == 0 {
			return nil
		}
		out := corev1.ResourceList{}
		for k, v := range m {
			out[corev1.ResourceName(k)] = resource.MustParse(v)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(r.Requests), Limits: list(r.Limits)}
}

// toYAML marshals a typed object to YAML with sorted keys, leaving out the empty status and
// the null creationTimestamp that the API types always carry.
func toYAML(obj any) ([]byte, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	prune(m)
	return yaml.Marshal(m)
}

// prune removes null values (creationTimestamp: null) at every depth.
func prune(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if x == nil {
				delete(t, k)
				continue
			}
			prune(x)
		}
	case []any:
		for _, x := range t {
			prune(x)
		}
	}
}
