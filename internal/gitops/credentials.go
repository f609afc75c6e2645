package gitops

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	fluxgit "github.com/fluxcd/pkg/git"
	fluxknownhosts "github.com/fluxcd/pkg/ssh/knownhosts"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// Credentials is the data of the Kubernetes Secret a Flux GitRepository's
// secretRef names: "username" and "password" (or "bearerToken") for
// HTTPS, "identity", "identity.pub" and "known_hosts" (plus "password" as
// the key passphrase) for SSH, and optionally "ca.crt", "tls.crt" and
// "tls.key". It prints as "[redacted]" in every format, so it is safe to
// log a Repo by mistake.
type Credentials map[string][]byte

// String hides the values.
func (Credentials) String() string { return "[redacted]" }

// GoString hides the values from %#v.
func (Credentials) GoString() string { return "gitops.Credentials{[redacted]}" }

// Format hides the values from every fmt verb.
func (Credentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// LogValue hides the values from log/slog.
func (Credentials) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON hides the values from encoding/json and zerolog.
func (Credentials) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// remote is a checked Repo turned into what go-git needs.
type remote struct {
	url     string // without secrets; safe to show
	branch  plumbing.ReferenceName
	auth    transport.AuthMethod
	ca      []byte
	cert    []byte
	key     []byte
	secrets []string // masked out of every error
	proxy   transport.ProxyOptions
}

// endpoint returns the go-git endpoint with the TLS material set.
func (r *remote) endpoint() (*transport.Endpoint, error) {
	ep, err := transport.NewEndpoint(r.url)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", ErrInvalidArgument)
	}
	ep.CaBundle, ep.ClientCert, ep.ClientKey = r.ca, r.cert, r.key
	ep.Proxy = r.proxy
	return ep, nil
}

// resolve checks repo and builds its auth with fluxcd/pkg/git's
// AuthOptions, so the secret has the same shape Flux reads.
func (w *Writer) resolve(repo Repo) (*remote, error) {
	branch := plumbing.NewBranchReferenceName(repo.Branch)
	if repo.Branch == "" || strings.HasPrefix(repo.Branch, "-") || branch.Validate() != nil {
		return nil, fmt.Errorf("branch %q: %w", repo.Branch, ErrInvalidArgument)
	}
	u, err := url.Parse(repo.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("repository url %q is not an http(s):// or ssh:// url: %w", mask(repo.URL, nil), ErrInvalidArgument)
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return nil, fmt.Errorf("repository url scheme %q is not http, https or ssh: %w", u.Scheme, ErrInvalidArgument)
	}
	r := &remote{branch: branch}
	if pw, ok := u.User.Password(); ok {
		r.secrets = append(r.secrets, pw)
	}
	for _, k := range []string{"password", "bearerToken"} {
		if v := repo.Auth[k]; len(v) > 0 {
			r.secrets = append(r.secrets, string(v))
		}
	}
	opts, err := fluxgit.NewAuthOptions(*u, repo.Auth)
	if err != nil {
		return nil, fmt.Errorf("credentials: %s: %w", mask(err.Error(), r.secrets), ErrAuth)
	}
	clean := *u
	if u.Scheme == "ssh" {
		clean.User = url.User(opts.Username)
	} else {
		clean.User = nil
	}
	r.url = clean.String()
	r.proxy = w.sshProxy(r.url)
	r.ca, r.cert, r.key = opts.CAFile, opts.ClientCert, opts.ClientKey
	switch opts.Transport {
	case fluxgit.SSH:
		r.auth, err = sshAuth(opts, w.timeout)
		if err != nil {
			return nil, fmt.Errorf("ssh credentials: %s: %w", mask(err.Error(), r.secrets), ErrAuth)
		}
	default:
		if opts.Transport == fluxgit.HTTP && !w.insecureHTTP && (opts.Username != "" || opts.Password != "" || opts.BearerToken != "") {
			return nil, fmt.Errorf("refusing to send credentials over plain http to %s: %w", r.url, ErrInvalidArgument)
		}
		switch {
		case opts.Username != "" || opts.Password != "":
			r.auth = &githttp.BasicAuth{Username: opts.Username, Password: opts.Password}
		case opts.BearerToken != "":
			r.auth = &githttp.TokenAuth{Token: opts.BearerToken}
		}
	}
	return r, nil
}

// sshAuth builds public key auth pinned to known_hosts, the way Flux's
// gogit transport does; gogit's own builder is unexported.
func sshAuth(opts *fluxgit.AuthOptions, timeout time.Duration) (transport.AuthMethod, error) {
	pk, err := gitssh.NewPublicKeys(opts.Username, opts.Identity, opts.Password)
	if err != nil {
		return nil, fmt.Errorf("parse identity: %w", err)
	}
	cb, algos, err := fluxknownhosts.New(opts.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("parse known_hosts: %w", err)
	}
	// Prefer SHA-2 signatures when the host is only known by an RSA key.
	if len(algos) == 1 && algos[0] == ssh.KeyAlgoRSA {
		algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	pk.HostKeyCallback = cb
	pk.HostKeyAlgorithms = algos
	return &timedPublicKeys{PublicKeys: pk, timeout: timeout}, nil
}

// timedPublicKeys adds a dial timeout, since go-git's SSH dial takes no
// context.
type timedPublicKeys struct {
	*gitssh.PublicKeys
	timeout time.Duration
}

// ClientConfig returns the key's config with the timeout set.
func (t *timedPublicKeys) ClientConfig() (*ssh.ClientConfig, error) {
	cfg, err := t.PublicKeys.ClientConfig()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = t.timeout
	return cfg, nil
}
