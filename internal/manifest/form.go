// Package manifest turns a deploy form into Kubernetes manifests for Flux to apply. It builds
// typed objects from k8s.io/api and marshals them with sigs.k8s.io/yaml (never text templates),
// so the output is valid by construction and byte-for-byte deterministic: the same form always
// renders the same files, and a second deploy of an unchanged form makes no commit.
//
// Each template kind (web-app, microservice, cron-job) fills what the form leaves out with
// best-practice defaults: probes, requests and limits, a rolling update with a progress
// deadline, a non-root, read-only container. A helm-app renders no manifests: its workload is
// a Helm chart that a Flux HelmRelease installs, and the form only names it (app, namespace).
// The package is pure: no I/O, no database.
package manifest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Template kinds: the built-in templates.
const (
	KindWebApp       = "web-app"      // Deployment, Service, Ingress, HorizontalPodAutoscaler
	KindMicroservice = "microservice" // Deployment, Service
	KindCronJob      = "cron-job"     // CronJob
	KindHelmApp      = "helm-app"     // no manifests: a HelmRelease installs a chart
)

// Kinds returns the built-in template kinds.
func Kinds() []string { return []string{KindWebApp, KindMicroservice, KindCronJob, KindHelmApp} }

// IsKind reports whether s is a built-in template kind.
func IsKind(s string) bool { return slices.Contains(Kinds(), s) }

// Form is what a person fills in to deploy an app. Zero values mean "use the template's
// default"; pointers tell an explicit zero (replicas: 0) from an absent field.
type Form struct {
	// App names the workload and its directory; a DNS label (at most 52 characters for a
	// cron job, whose Job names get a suffix).
	App string `json:"app"`
	// Namespace is the target namespace; empty means the environment's default.
	Namespace string `json:"namespace,omitempty"`
	// Image is the repository, e.g. "ghcr.io/acme/api", or a reference pinned by digest.
	Image string `json:"image"`
	// Tag is the image tag, e.g. "1.4.3"; required unless Image carries a digest.
	Tag string `json:"tag,omitempty"`
	// Replicas is the number of pods (the autoscaler's minimum for a web app); default 2.
	Replicas *int32 `json:"replicas,omitempty"`
	// Ports are the container ports; a web app or microservice needs at least one.
	Ports []Port `json:"ports,omitempty"`
	// Env are environment variables, plain or from a Secret key.
	Env []EnvVar `json:"env,omitempty"`
	// Resources are CPU, memory and ephemeral-storage requests and limits.
	Resources *Resources `json:"resources,omitempty"`
	// LivenessProbe restarts a stuck container; default a TCP check of the first port.
	LivenessProbe *Probe `json:"liveness_probe,omitempty"`
	// ReadinessProbe gates traffic; default a TCP check of the first port.
	ReadinessProbe *Probe `json:"readiness_probe,omitempty"`
	// Command and Args override the image's entrypoint and arguments.
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Schedule is a cron job's schedule in standard cron syntax ("*/5 * * * *", "@hourly").
	Schedule string `json:"schedule,omitempty"`
	// TimeZone is a cron job's IANA time zone, e.g. "Europe/Berlin"; default UTC.
	TimeZone string `json:"time_zone,omitempty"`
	// Ingress exposes a web app over HTTP(S).
	Ingress *Ingress `json:"ingress,omitempty"`
	// Autoscaling tunes a web app's HorizontalPodAutoscaler.
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`
	// RunAsUser is the UID the container runs as; default the image's user, which must not
	// be root.
	RunAsUser *int64 `json:"run_as_user,omitempty"`
	// ImageAutomation lets Flux's image automation move the app to newer tags of Image (R6b).
	ImageAutomation *ImageAutomation `json:"image_automation,omitempty"`
}

// ImageAutomation keeps an app on the newest tag of its image within a range: fluxbridge
// creates an ImageRepository scanning the image, an ImagePolicy choosing the tag and an
// ImageUpdateAutomation committing the choice into the app's directory, and marks the image
// in the manifest with the policy's setter comment (# {"$imagepolicy": "<ns>:<name>"}). A
// rollback of the app suspends its ImageUpdateAutomation until the app is unlocked.
type ImageAutomation struct {
	// SemVer is the range of tags to follow, e.g. ">=1.4.0 <2.0.0" or "~1.4".
	SemVer string `json:"semver"`
	// ScanInterval is how often the registry is scanned for new tags; default 5m.
	ScanInterval string `json:"scan_interval,omitempty"`
}

// Port is one container port, exposed by the Service.
type Port struct {
	// Name is an IANA service name ("http"); default "port-<number>", or "http" for the first.
	Name string `json:"name,omitempty"`
	// ContainerPort is where the container listens, 1–65535.
	ContainerPort int32 `json:"container_port"`
	// ServicePort is the Service's port; default ContainerPort.
	ServicePort int32 `json:"service_port,omitempty"`
	// Protocol is TCP (default), UDP or SCTP.
	Protocol string `json:"protocol,omitempty"`
}

// EnvVar is an environment variable with exactly one of Value and SecretKeyRef.
type EnvVar struct {
	Name         string        `json:"name"`
	Value        *string       `json:"value,omitempty"`
	SecretKeyRef *SecretKeyRef `json:"secret_key_ref,omitempty"`
}

// SecretKeyRef names a key of a Secret in the app's namespace. Only the reference goes to
// Git, never the value.
type SecretKeyRef struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional bool   `json:"optional,omitempty"`
}

// Resources are quantities in Kubernetes syntax ("250m", "512Mi") keyed by "cpu", "memory"
// and "ephemeral-storage".
type Resources struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// Probe is a health check with exactly one of HTTPGet, TCPSocket, Exec and GRPC.
type Probe struct {
	HTTPGet             *HTTPGetAction `json:"http_get,omitempty"`
	TCPSocket           *PortAction    `json:"tcp_socket,omitempty"`
	GRPC                *PortAction    `json:"grpc,omitempty"`
	Exec                []string       `json:"exec,omitempty"`
	InitialDelaySeconds int32          `json:"initial_delay_seconds,omitempty"`
	PeriodSeconds       int32          `json:"period_seconds,omitempty"`
	TimeoutSeconds      int32          `json:"timeout_seconds,omitempty"`
	FailureThreshold    int32          `json:"failure_threshold,omitempty"`
}

// HTTPGetAction probes an HTTP path on a port given by number or by name.
type HTTPGetAction struct {
	Path string    `json:"path"`
	Port PortValue `json:"port"`
}

// PortAction probes a port given by number or by name.
type PortAction struct {
	Port PortValue `json:"port"`
}

// PortValue is a port number or a port name; JSON accepts 8080 or "http".
type PortValue struct {
	Number int32
	Name   string
}

// MarshalJSON writes the number, or the name as a string.
func (p PortValue) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	return []byte(strconv.Itoa(int(p.Number))), nil
}

// UnmarshalJSON reads a number or a string.
func (p *PortValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*p = PortValue{Name: s}
		return nil
	}
	var n int32
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a port number or a port name")
	}
	*p = PortValue{Number: n}
	return nil
}

// String returns the number or the name.
func (p PortValue) String() string {
	if p.Name != "" {
		return p.Name
	}
	return fmt.Sprint(p.Number)
}

// Ingress routes a host (and path) to a web app's first Service port.
type Ingress struct {
	// Host is the DNS name, e.g. "api.example.com"; required for a web app.
	Host string `json:"host"`
	// Path is the URL path prefix; default "/".
	Path string `json:"path,omitempty"`
	// ClassName picks the ingress controller; default the cluster's default class.
	ClassName string `json:"class_name,omitempty"`
	// TLSSecret names the Secret holding the certificate; empty means plain HTTP.
	TLSSecret string `json:"tls_secret,omitempty"`
}

// Autoscaling tunes a web app's HorizontalPodAutoscaler; its minimum is Form.Replicas.
type Autoscaling struct {
	// MaxReplicas defaults to twice the minimum.
	MaxReplicas int32 `json:"max_replicas,omitempty"`
	// TargetCPUPercent is the average CPU utilisation to aim for; default 80.
	TargetCPUPercent int32 `json:"target_cpu_percent,omitempty"`
}

// FieldError names the form field at fault, in JSON path syntax ("ports[1].container_port").
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
