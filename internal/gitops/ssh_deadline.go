package gitops

import (
	"context"
	"net"
	"net/url"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's SSH transport bounds the TCP dial by ClientConfig.Timeout but not the handshake
// after it, and takes no context: against a server that accepts connections and never
// answers, a fetch or push over SSH waited for ever, past the Writer's timeout. go-git dials
// through golang.org/x/net/proxy when an endpoint names a proxy, so SSH endpoints name this
// scheme: a direct dialer that puts the Writer's timeout on the connection as a deadline, which
// bounds the handshake and everything after it (a whole operation is bounded by it anyway).
const deadlineScheme = "fluxbridge-deadline"

func init() {
	proxy.RegisterDialerType(deadlineScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
		d, err := time.ParseDuration(u.Query().Get("timeout"))
		if err != nil || d <= 0 {
			d = defaultTimeout
		}
		return deadlineDialer{d}, nil
	})
}

type deadlineDialer struct{ timeout time.Duration }

func (d deadlineDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: d.timeout}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := c.SetDeadline(time.Now().Add(d.timeout)); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// sshProxy is the proxy setting of an SSH endpoint: the deadline dialer with the Writer's
// timeout. Other schemes get none.
func (w *Writer) sshProxy(rawURL string) transport.ProxyOptions {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ssh" {
		return transport.ProxyOptions{}
	}
	return transport.ProxyOptions{URL: deadlineScheme + "://direct?timeout=" + url.QueryEscape(w.timeout.String())}
}
