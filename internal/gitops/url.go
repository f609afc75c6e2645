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
