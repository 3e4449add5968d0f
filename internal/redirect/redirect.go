// Package redirect is the redirect policy of Causeway's HTTP clients that
// send a credential (a bearer token) with their requests.
//
// Go's http.Client keeps the Authorization header on a redirect to the same
// host name whatever its scheme and port, and to its subdomains: followed,
// a redirect from https to plain http, or to another port of the host,
// sends the credential in clear, or to another service.
package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// MaxRedirects is how many redirects SameOrigin follows (as many as Go's
// default policy).
const MaxRedirects = 10

// SameOrigin is an http.Client's CheckRedirect that follows a redirect
// only within the origin (scheme, host and port) of the request it
// answers. One elsewhere fails the request, naming where it pointed.
func SameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("stopped after %d redirects", MaxRedirects)
	}
	if len(via) == 0 {
		return errors.New("redirect without a request it answers")
	}
	from := via[len(via)-1].URL
	if !strings.EqualFold(req.URL.Scheme, from.Scheme) || !strings.EqualFold(hostPort(req.URL), hostPort(from)) {
		return fmt.Errorf("redirected to %s://%s, another origin than %s://%s: not followed, as the credential would go with it; use the URL that answers",
			req.URL.Scheme, req.URL.Host, from.Scheme, from.Host)
	}
	return nil
}

// hostPort is u's host:port, with the scheme's default port when none is
// written.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
