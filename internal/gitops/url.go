package gitops

import (
	"net/url"
	"strings"
)

// SameRepository tells whether two Git URLs name the same repository: scheme and host compared
// without case, default ports and a trailing ".git" or "/" dropped, and, for SSH, the user
// compared too ("ssh://git@host/x" and "ssh://git@host:22/x.git" are the same). Credentials in
// a URL are never part of the comparison; an unparsable URL matches nothing.
func SameRepository(a, b string) bool {
	na, okA := normalizeURL(a)
	nb, okB := normalizeURL(b)
	return okA && okB && na == nb
}

func normalizeURL(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == map[string]string{"https": "443", "http": "80", "ssh": "22"}[scheme] {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	user := ""
	if scheme == "ssh" && u.User != nil {
		user = u.User.Username() + "@"
	}
	p := strings.TrimSuffix(strings.TrimSuffix(u.EscapedPath(), "/"), ".git")
	return scheme + "://" + user + host + p, true
}

// CommitWebURL returns the web page of commit sha in the repository at repoURL when its host
// is one whose URL pattern is known — GitHub (/commit/), GitLab (/-/commit/), Gitea, Forgejo
// and Codeberg (/commit/) — and "" otherwise. An SSH URL maps to the host's https pages;
// credentials and ports of the Git URL are dropped.
func CommitWebURL(repoURL, sha string) string {
	raw := strings.TrimSpace(repoURL)
	if sha == "" || raw == "" {
		return ""
	}
	// scp-like SSH: git@github.com:org/repo.git
	if !strings.Contains(raw, "://") {
		if at := strings.Index(raw, "@"); at >= 0 {
			if host, path, ok := strings.Cut(raw[at+1:], ":"); ok {
				raw = "ssh://" + host + "/" + path
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	if strings.Count(strings.Trim(path, "/"), "/") < 1 {
		return ""
	}
	var sep string
	switch {
	case strings.Contains(host, "gitlab"):
		sep = "/-/commit/"
	case strings.Contains(host, "github"), strings.Contains(host, "gitea"), strings.Contains(host, "forgejo"), strings.Contains(host, "codeberg"):
		sep = "/commit/"
	default:
		return ""
	}
	return "https://" + host + path + sep + url.PathEscape(sha)
}
