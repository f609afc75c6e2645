package ncrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	eventv1 "github.com/fluxcd/pkg/apis/event/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Timings and limits, as notification-controller has them.
const (
	// DuplicateWindow is how long a repeat of an event is refused with 429.
	DuplicateWindow = 5 * time.Minute
	// Retries is how many times a failed delivery is retried.
	Retries = 4
	// DefaultRetryWait is the wait before the first retry, doubled for each next one.
	DefaultRetryWait = 2 * time.Second
	maxRetryWait     = 30 * time.Second
	defaultTimeout   = 15 * time.Second // a Provider without spec.timeout
	lookupTimeout    = 15 * time.Second // reading Alerts, Providers and Secrets
	maxEventBytes    = 3 << 20          // 3 MiB
)

// Options configure a Relay.
type Options struct {
	// Client reads Alerts, Providers, their Secrets and, for matchLabels, the involved objects.
	Client client.Client
	// HTTPClient posts the deliveries; default a client without its own timeout (the
	// Provider's timeout bounds each delivery).
	HTTPClient *http.Client
	// RetryWait is the wait before the first retry; default DefaultRetryWait.
	RetryWait time.Duration
	// Now is the clock of the duplicate window; default time.Now.
	Now func() time.Time
	// Logf, when set, receives one line per dropped or failed delivery.
	Logf func(format string, args ...any)
}

// Delivery is one event forwarded to one Provider, for tests to inspect.
type Delivery struct {
	Alert    string // namespace/name
	Provider string // namespace/name
	Address  string
	Event    eventv1.Event // as forwarded
	Body     []byte
	Header   http.Header
	Status   int // the last answer; 0 when none came
	Attempts int
	Err      error // nil when delivered
}

// Relay is the stand-in notification-controller event server; it is an http.Handler.
type Relay struct {
	opts Options

	mu         sync.Mutex
	seen       map[string]time.Time // duplicate window, by eventKey
	received   int
	deliveries []Delivery
	inflight   sync.WaitGroup
}

// New returns a Relay.
func New(opts Options) *Relay {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.RetryWait <= 0 {
		opts.RetryWait = DefaultRetryWait
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Relay{opts: opts, seen: map[string]time.Time{}}
}

// ServeHTTP receives one event from a Flux controller. It answers 400 to a body that is not an
// event, 429 to a duplicate and 202 otherwise; the deliveries run after the answer.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxEventBytes))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var ev eventv1.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		r.opts.Logf("ncrelay: decode event: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.duplicate(&ev) {
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), lookupTimeout)
	defer cancel()
	jobs, err := r.route(ctx, &ev)
	if err != nil {
		r.opts.Logf("ncrelay: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	for _, j := range jobs {
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			r.record(r.deliver(j))
		}()
	}
	w.WriteHeader(http.StatusAccepted)
}

// duplicate records ev and tells whether the same event came within DuplicateWindow.
func (r *Relay) duplicate(ev *eventv1.Event) bool {
	key, now := eventKey(ev), r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received++
	if at, ok := r.seen[key]; ok && now.Sub(at) < DuplicateWindow {
		return true
	}
	r.seen[key] = now
	return false
}

// job is one delivery to make.
type job struct {
	alert    *notificationv1beta3.Alert
	provider *notificationv1beta3.Provider
	address  string
	token    string
	headers  map[string]string
	event    eventv1.Event
	err      error // set when the Provider cannot be used
}

// route finds the Alerts that forward ev and resolves their Providers.
func (r *Relay) route(ctx context.Context, ev *eventv1.Event) ([]job, error) {
	var alerts notificationv1beta3.AlertList
	if err := r.opts.Client.List(ctx, &alerts); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	var out []job
	for i := range alerts.Items {
		a := &alerts.Items[i]
		if !matches(a, ev, r.objectLabels(ctx)) {
			continue
		}
		j := job{alert: a, event: notification(ev, a)}
		j.provider, j.address, j.token, j.headers, j.err = r.provider(ctx, a)
		if j.provider != nil && j.provider.Spec.Suspend {
			continue
		}
		out = append(out, j)
	}
	return out, nil
}

// objectLabels reads the labels of an event's involved object.
func (r *Relay) objectLabels(ctx context.Context) LabelsFunc {
	return func(ev *eventv1.Event) (map[string]string, error) {
		o := ev.InvolvedObject
		var pom metav1.PartialObjectMetadata
		pom.SetGroupVersionKind(schema.FromAPIVersionAndKind(o.APIVersion, o.Kind))
		if err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, &pom); err != nil {
			return nil, err
		}
		return pom.GetLabels(), nil
	}
}

// provider reads an Alert's Provider and its Secret.
func (r *Relay) provider(ctx context.Context, a *notificationv1beta3.Alert) (*notificationv1beta3.Provider, string, string, map[string]string, error) {
	var p notificationv1beta3.Provider
	if err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}, &p); err != nil {
		return nil, "", "", nil, fmt.Errorf("read provider %s/%s: %w", a.Namespace, a.Spec.ProviderRef.Name, err)
	}
	address, token, headers := p.Spec.Address, "", map[string]string{}
	if ref := p.Spec.SecretRef; ref != nil {
		var s corev1.Secret
		if err := r.opts.Client.Get(ctx, client.ObjectKey{Namespace: a.Namespace, Name: ref.Name}, &s); err != nil {
			return &p, "", "", nil, fmt.Errorf("read secret %s/%s of provider %s: %w", a.Namespace, ref.Name, p.Name, err)
		}
		if v, ok := s.Data["address"]; ok {
			address = string(v)
		}
		token = string(s.Data["token"])
		if h, ok := s.Data["headers"]; ok {
			if err := yaml.Unmarshal(h, &headers); err != nil {
				return &p, "", "", nil, fmt.Errorf("secret %s/%s: headers: %w", a.Namespace, ref.Name, err)
			}
		}
	}
	switch {
	case p.Spec.Type != notificationv1beta3.GenericProvider && p.Spec.Type != notificationv1beta3.GenericHMACProvider:
		return &p, "", "", nil, fmt.Errorf("provider %s/%s: type %q is not implemented by the stand-in", p.Namespace, p.Name, p.Spec.Type)
	case address == "":
		return &p, "", "", nil, fmt.Errorf("provider %s/%s has no address", p.Namespace, p.Name)
	case p.Spec.Type == notificationv1beta3.GenericHMACProvider && token == "":
		return &p, "", "", nil, fmt.Errorf("provider %s/%s: generic-hmac needs a token in its secret", p.Namespace, p.Name)
	}
	return &p, address, token, headers, nil
}

// deliver posts one notification, retrying as notification-controller does.
func (r *Relay) deliver(j job) Delivery {
	d := Delivery{Alert: j.alert.Namespace + "/" + j.alert.Name, Address: j.address, Event: j.event, Err: j.err}
	if j.provider != nil {
		d.Provider = j.provider.Namespace + "/" + j.provider.Name
	}
	if j.err != nil {
		return d
	}
	body, err := json.Marshal(j.event)
	if err != nil {
		d.Err = fmt.Errorf("encode event: %w", err)
		return d
	}
	d.Body = body
	timeout := defaultTimeout
	if t := j.provider.Spec.Timeout; t != nil && t.Duration > 0 {
		timeout = t.Duration
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	wait := r.opts.RetryWait
	for d.Attempts = 1; ; d.Attempts++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.address, bytes.NewReader(body))
		if err != nil {
			d.Err = fmt.Errorf("request: %w", err)
			return d
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Gotk-Component", j.event.ReportingController)
		for k, v := range j.headers {
			req.Header.Set(k, v)
		}
		if j.provider.Spec.Type == notificationv1beta3.GenericHMACProvider {
			req.Header.Set("X-Signature", signature(body, j.token))
		}
		d.Header = req.Header
		retry := false
		resp, err := r.opts.HTTPClient.Do(req)
		if err != nil {
			d.Status, d.Err, retry = 0, err, ctx.Err() == nil
		} else {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			d.Status = resp.StatusCode
			switch {
			case resp.StatusCode >= 200 && resp.StatusCode < 300:
				d.Err = nil
				return d
			case resp.StatusCode == http.StatusTooManyRequests,
				resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
				retry = true
			}
			d.Err = fmt.Errorf("post %s: %s", j.address, resp.Status)
		}
		if !retry || d.Attempts > Retries {
			return d
		}
		select {
		case <-ctx.Done():
			d.Err = errors.Join(d.Err, ctx.Err())
			return d
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryWait)
	}
}

func (r *Relay) record(d Delivery) {
	if d.Err != nil {
		o := d.Event.InvolvedObject
		r.opts.Logf("ncrelay: %s %s/%s %s via alert %s: %d attempts: %v", o.Kind, o.Namespace, o.Name, d.Event.Reason, d.Alert, d.Attempts, d.Err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deliveries = append(r.deliveries, d)
}

// Wait waits for the deliveries in flight.
func (r *Relay) Wait() { r.inflight.Wait() }

// Deliveries returns the finished deliveries, oldest first.
func (r *Relay) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Received returns how many events the controllers posted, duplicates included.
func (r *Relay) Received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}
