package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// helmRepo is a loopback HTTP Helm repository: an index.yaml and the chart tarballs the test
// publishes into it.
type helmRepo struct {
	srv  *http.Server
	base string // http://127.0.0.1:<port>

	mu     sync.Mutex
	charts map[string][]byte // file name → tarball
	index  []byte
}

// startHelmRepo serves an empty repository on a free loopback port.
func startHelmRepo() (*helmRepo, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &helmRepo{base: "http://" + l.Addr().String(), charts: map[string][]byte{}}
	h.index = h.renderIndex()
	h.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = h.srv.Serve(l) }()
	return h, nil
}

func (h *helmRepo) stop() { _ = h.srv.Close() }

// url is the repository URL a HelmRepository points at.
func (h *helmRepo) url() string { return h.base }

func (h *helmRepo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case name == "index.yaml":
		w.Header().Set("Content-Type", "application/x-yaml")
		_, _ = w.Write(h.index)
	case h.charts[name] != nil:
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(h.charts[name])
	default:
		http.NotFound(w, r)
	}
}

// publish builds chart name at version (one ConfigMap named <release>-config whose data holds
// the chart version and the values' greeting) and adds it to the index.
func (h *helmRepo) publish(name, version string) error {
	tgz, err := chartTarball(name, version)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.charts[fmt.Sprintf("%s-%s.tgz", name, version)] = tgz
	h.index = h.renderIndex()
	return nil
}

// renderIndex writes index.yaml for the published charts, newest version first.
func (h *helmRepo) renderIndex() []byte {
	type entry struct {
		APIVersion string   `json:"apiVersion"`
		Name       string   `json:"name"`
		Version    string   `json:"version"`
		AppVersion string   `json:"appVersion"`
		Created    string   `json:"created"`
		Digest     string   `json:"digest"`
		URLs       []string `json:"urls"`
	}
	entries := map[string][]entry{}
	files := make([]string, 0, len(h.charts))
	for f := range h.charts {
		files = append(files, f)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(files)))
	for _, f := range files {
		base := strings.TrimSuffix(f, ".tgz")
		i := strings.LastIndex(base, "-")
		name, version := base[:i], base[i+1:]
		sum := sha256.Sum256(h.charts[f])
		entries[name] = append(entries[name], entry{
			APIVersion: "v2", Name: name, Version: version, AppVersion: version,
			Created: "2026-01-01T00:00:00Z", Digest: hex.EncodeToString(sum[:]), URLs: []string{h.base + "/" + f},
		})
	}
	b, _ := yaml.Marshal(map[string]any{"apiVersion": "v1", "entries": entries, "generated": "2026-01-01T00:00:00Z"})
	return b
}

// chartFiles are the files of chart name at version, by path inside the chart's directory.
func chartFiles(name, version string) map[string]string {
	return map[string]string{
		"Chart.yaml":  fmt.Sprintf("apiVersion: v2\nname: %s\nversion: %s\nappVersion: %q\ndescription: e2e chart\ntype: application\n", name, version, version),
		"values.yaml": "greeting: hello\n",
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  chartVersion: {{ .Chart.Version | quote }}
  greeting: {{ .Values.greeting | quote }}
`,
	}
}

// chartTarball builds a chart archive as `helm package` lays it out.
func chartTarball(name, version string) ([]byte, error) {
	files := chartFiles(name, version)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		body := files[f]
		if err := tw.WriteHeader(&tar.Header{Name: name + "/" + f, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
