package manifest

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Template defaults: what a form that leaves a field out gets.
const (
	defaultReplicas         = 2
	defaultTargetCPUPercent = 80
	defaultProgressDeadline = 600 // seconds before a stuck rollout is reported failed
	defaultRevisionHistory  = 5   // old ReplicaSets kept for kubectl rollout undo
	defaultStartingDeadline = 300 // seconds a missed cron run may still start
	defaultJobBackoffLimit  = 2   // retries of a failed cron run
	defaultSuccessHistory   = 3   // finished Jobs kept
	defaultFailedHistory    = 1   // failed Jobs kept
	defaultIngressPath      = "/"
)

// defaultRequests and defaultLimits apply per resource the form leaves out.
var (
	defaultRequests = map[string]string{"cpu": "100m", "memory": "128Mi"}
	defaultLimits   = map[string]string{"cpu": "500m", "memory": "256Mi"}
)

// portName returns the name of the i-th port: its own, "http" for an unnamed first port,
// "port-<number>" for other unnamed ones.
func portName(p Port, i int) string {
	switch {
	case p.Name != "":
		return p.Name
	case i == 0:
		return "http"
	}
	return fmt.Sprintf("port-%d", p.ContainerPort)
}

// withDefaults returns a copy of f with every default of kind filled in. Render and Diff both
// work on it, so a default that changes shows up as a change.
func (f Form) withDefaults(kind string) Form {
	out := f
	if kind == KindHelmApp {
		return out // the chart's own values are its defaults
	}
	if kind != KindCronJob && out.Replicas == nil {
		r := int32(defaultReplicas)
		out.Replicas = &r
	}
	out.Ports = make([]Port, len(f.Ports))
	for i, p := range f.Ports {
		p.Name = portName(p, i)
		if p.ServicePort == 0 {
			p.ServicePort = p.ContainerPort
		}
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		out.Ports[i] = p
	}
	out.Resources = resourcesWithDefaults(f.Resources)
	if kind != KindCronJob && len(out.Ports) > 0 {
		first := PortValue{Name: out.Ports[0].Name}
		if out.ReadinessProbe == nil {
			out.ReadinessProbe = &Probe{TCPSocket: &PortAction{Port: first}, PeriodSeconds: 10}
		}
		if out.LivenessProbe == nil {
			out.LivenessProbe = &Probe{TCPSocket: &PortAction{Port: first}, InitialDelaySeconds: 10, PeriodSeconds: 20}
		}
	}
	if kind == KindWebApp {
		in := Ingress{}
		if f.Ingress != nil {
			in = *f.Ingress
		}
		if in.Path == "" {
			in.Path = defaultIngressPath
		}
		out.Ingress = &in
		a := Autoscaling{}
		if f.Autoscaling != nil {
			a = *f.Autoscaling
		}
		if a.MaxReplicas == 0 {
			a.MaxReplicas = 2 * *out.Replicas
		}
		if a.TargetCPUPercent == 0 {
			a.TargetCPUPercent = defaultTargetCPUPercent
		}
		out.Autoscaling = &a
	}
	return out
}

// resourcesWithDefaults fills requests and limits the form leaves out. A default never
// contradicts what was given: a default limit below a given request becomes that request, and
// a default request above a given limit becomes that limit.
func resourcesWithDefaults(r *Resources) *Resources {
	out := &Resources{Requests: map[string]string{}, Limits: map[string]string{}}
	if r != nil {
		for k, v := range r.Requests {
			out.Requests[k] = v
		}
		for k, v := range r.Limits {
			out.Limits[k] = v
		}
	}
	for k, def := range defaultRequests {
		if _, ok := out.Requests[k]; ok {
			continue
		}
		out.Requests[k] = def
		if l, ok := out.Limits[k]; ok && cmpQuantity(l, def) < 0 {
			out.Requests[k] = l
		}
	}
	for k, def := range defaultLimits {
		if _, ok := out.Limits[k]; ok {
			continue
		}
		out.Limits[k] = def
		if q := out.Requests[k]; cmpQuantity(q, def) > 0 {
			out.Limits[k] = q
		}
	}
	return out
}

// cmpQuantity compares two valid quantities as Quantity.Cmp does.
func cmpQuantity(a, b string) int {
	qa, qb := resource.MustParse(a), resource.MustParse(b)
	return qa.Cmp(qb)
}
