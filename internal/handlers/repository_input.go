package handlers

import (
	"bytes"
	"errors"
	"net/url"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/secrets"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Repository auth types, as the repositories CHECK constraint allows.
const (
	authNone  = "none"
	authHTTPS = "https"
	authSSH   = "ssh"
)

// authInput is how a client hands over a repository's credentials. They go straight to the
// secret store; no response, log line, audit row or job ever holds them.
type authInput struct {
	Type string `json:"type"`
	// HTTPS: a username and password (or personal access token), or a bearer token.
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
	BearerToken string `json:"bearer_token,omitempty"`
	// SSH: a private key in PEM or OpenSSH format, its passphrase, and the known_hosts lines
	// of the server (ssh-keyscan output).
	PrivateKey string `json:"private_key,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
	KnownHosts string `json:"known_hosts,omitempty"`
	// CACert is a PEM CA bundle for an HTTPS server with a private CA.
	CACert string `json:"ca_cert,omitempty"`
}

// String never shows the secrets, in case the input is logged by mistake.
func (a authInput) String() string { return "authInput{type:" + a.Type + ", [redacted]}" }

// check validates the credentials against the repository URL's scheme and returns them in
// the shape of a Flux GitRepository secret (nil for type none).
func (a *authInput) check(rawURL string) (secrets.Data, error) {
	scheme := ""
	if u, err := url.Parse(rawURL); err == nil {
		scheme = u.Scheme
	}
	switch a.Type {
	case "", authNone:
		a.Type = authNone
		if a.Username != "" || a.Password != "" || a.BearerToken != "" || a.PrivateKey != "" {
			return nil, errBadRequest("auth.type", "is none, but credentials were given; set it to https or ssh")
		}
		return nil, nil
	case authHTTPS:
		if scheme != "https" {
			return nil, errBadRequest("auth.type", "https credentials need an https:// url (credentials are never sent over plain http)")
		}
		d := secrets.Data{}
		switch {
		case a.BearerToken != "" && (a.Username != "" || a.Password != ""):
			return nil, errBadRequest("auth.bearer_token", "give a bearer token or a username and password, not both")
		case a.BearerToken != "":
			d["bearerToken"] = []byte(a.BearerToken)
		case a.Username == "" || a.Password == "":
			return nil, errBadRequest("auth.password", "https auth needs a username and a password (or a token as the password), or a bearer_token")
		default:
			d["username"], d["password"] = []byte(a.Username), []byte(a.Password)
		}
		if a.CACert != "" {
			if !bytes.Contains([]byte(a.CACert), []byte("-----BEGIN CERTIFICATE-----")) {
				return nil, errBadRequest("auth.ca_cert", "must be a PEM certificate bundle")
			}
			d["ca.crt"] = []byte(a.CACert)
		}
		return d, nil
	case authSSH:
		if scheme != "ssh" {
			return nil, errBadRequest("auth.type", "ssh credentials need an ssh:// url, e.g. ssh://git@github.com/acme/fleet.git")
		}
		if a.PrivateKey == "" {
			return nil, errBadRequest("auth.private_key", "is required for ssh auth")
		}
		var err error
		if a.Passphrase != "" {
			_, err = ssh.ParsePrivateKeyWithPassphrase([]byte(a.PrivateKey), []byte(a.Passphrase))
		} else {
			_, err = ssh.ParsePrivateKey([]byte(a.PrivateKey))
		}
		if err != nil {
			// The parser's message says what is wrong with the key without quoting it.
			return nil, errBadRequest("auth.private_key", "is not a usable private key: %s", sshKeyProblem(err))
		}
		if err := checkKnownHosts(a.KnownHosts); err != nil {
			return nil, err
		}
		d := secrets.Data{"identity": []byte(a.PrivateKey), "known_hosts": []byte(a.KnownHosts)}
		if a.Passphrase != "" {
			d["password"] = []byte(a.Passphrase)
		}
		return d, nil
	}
	return nil, errBadRequest("auth.type", "must be none, https or ssh, got %q", a.Type)
}

func sshKeyProblem(err error) string {
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return "it is encrypted: give its passphrase"
	}
	return "not a PEM or OpenSSH private key, or a wrong passphrase"
}

// checkKnownHosts requires at least one parsable known_hosts line: fluxbridge never trusts an
// SSH host key on first use.
func checkKnownHosts(kh string) error {
	if strings.TrimSpace(kh) == "" {
		return errBadRequest("auth.known_hosts", "is required for ssh auth: the server's host keys, as ssh-keyscan prints them")
	}
	rest := []byte(kh)
	n := 0
	for len(bytes.TrimSpace(rest)) > 0 {
		_, _, _, _, r, err := ssh.ParseKnownHosts(rest)
		if err != nil {
			return errBadRequest("auth.known_hosts", "is not in known_hosts format (host key-type base64-key per line)")
		}
		n++
		rest = r
	}
	if n == 0 {
		return errBadRequest("auth.known_hosts", "holds no host key")
	}
	return nil
}

// gitopsInput is a repository's GitOps settings as the API takes them.
type gitopsInput struct {
	Enabled bool   `json:"enabled"`
	Branch  string `json:"branch,omitempty"`
	Path    string `json:"path,omitempty"`
	Layout  string `json:"layout,omitempty"`
}

// branchRE is a conservative subset of git check-ref-format: no spaces, "~^:?*[\", "..", "@{".
var branchRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$`)

// checkBranch validates a branch name for field.
func checkBranch(field, b string) error {
	if !branchRE.MatchString(b) || strings.Contains(b, "..") || strings.Contains(b, "//") ||
		strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".lock") || strings.HasSuffix(b, ".") {
		return errBadRequest(field, "%q is not a valid branch name", b)
	}
	return nil
}

// checkDir validates a directory relative to the repository root for field; "" is the root.
func checkDir(field, dir string) error {
	if dir == "" {
		return nil
	}
	if err := gitops.CheckPath(strings.TrimSuffix(dir, "/")); err != nil {
		var pe *gitops.PathError
		if errors.As(err, &pe) {
			return errBadRequest(field, "%q %s; give a directory relative to the repository root", dir, pe.Reason)
		}
		return errBadRequest(field, "%v", err)
	}
	return nil
}

// check validates the settings and returns them as gitops_config.
func (g *gitopsInput) check() (store.RepoGitops, error) {
	c := store.RepoGitops{Branch: g.Branch, Path: strings.TrimSuffix(g.Path, "/"), Layout: g.Layout}
	if c.Branch == "" {
		c.Branch = store.DefaultBranch
	}
	if c.Layout == "" {
		c.Layout = store.LayoutDirectory
	}
	if err := checkBranch("gitops.branch", c.Branch); err != nil {
		return c, err
	}
	if err := checkDir("gitops.path", c.Path); err != nil {
		return c, err
	}
	if c.Layout != store.LayoutDirectory && c.Layout != store.LayoutBranch {
		return c, errBadRequest("gitops.layout", "must be %q (one branch, a directory per environment) or %q (a branch per environment), got %q",
			store.LayoutDirectory, store.LayoutBranch, c.Layout)
	}
	return c, nil
}

// checkRepoURL accepts https://, http:// (anonymous only) and ssh:// URLs without user info
// secrets; scp-style git@host:path gets a hint.
func checkRepoURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		if strings.Contains(raw, "@") && strings.Contains(raw, ":") && !strings.Contains(raw, "://") {
			return errBadRequest("url", "scp-style addresses are not accepted; write ssh://git@host/org/repo.git")
		}
		return errBadRequest("url", "must be an https:// or ssh:// url")
	}
	switch u.Scheme {
	case "https", "http", "ssh":
	default:
		return errBadRequest("url", "scheme %q is not https, http or ssh", u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return errBadRequest("url", "must not hold a password; give credentials in auth")
	}
	if u.User != nil && u.Scheme != "ssh" {
		return errBadRequest("url", "must not hold a user name; give credentials in auth")
	}
	return nil
}
