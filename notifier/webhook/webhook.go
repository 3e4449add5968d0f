// Package webhook sends one notification over HTTP, signed the Standard
// Webhooks way (https://www.standardwebhooks.com/, spec version 1.0.0):
//
//	webhook-id:        the message id, the same on every retry
//	webhook-timestamp: the attempt's time in Unix seconds
//	webhook-signature: v1,<base64(HMAC-SHA256(key, id + "." + timestamp + "." + body))>
//
// where key is the secret's bytes: a secret is written whsec_<base64 of 24
// to 64 random bytes>. A receiver verifies the signature and rejects stale
// timestamps; it deduplicates on webhook-id.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// Secret is a signing key. Its String redacts it.
type Secret struct{ key []byte }

// ParseSecret reads "whsec_<base64>" (standard base64 with padding).
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, errors.New("signing secret must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return Secret{}, fmt.Errorf("signing secret: bad base64: %w", err)
	}
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("signing secret: %d bytes, want 24 to 64", len(key))
	}
	return Secret{key: key}, nil
}

// NewSecret wraps raw key bytes (24 to 64 of them).
func NewSecret(key []byte) (Secret, error) {
	if len(key) < 24 || len(key) > 64 {
		return Secret{}, fmt.Errorf("signing secret: %d bytes, want 24 to 64", len(key))
	}
	return Secret{key: bytes.Clone(key)}, nil
}

// Encode returns the whsec_ form.
func (s Secret) Encode() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s.key) }

// IsZero reports an unset secret.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// String redacts the secret.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + "<redacted>"
}

// Sign returns the webhook-signature header value for one message.
func (s Secret) Sign(id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Request is one delivery attempt.
type Request struct {
	URL     string
	ID      string
	Body    []byte
	Headers map[string]string
	// Secret signs the request; zero sends it unsigned.
	Secret Secret
	// Timeout bounds the attempt (0: only ctx).
	Timeout time.Duration
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code int
	Body string // the first bytes of the answer
	// RetryAfter is the wait the answer's Retry-After header asks for
	// (delay-seconds or an HTTP-date; 0 when absent or unreadable).
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// Sender posts requests with one http.Client.
type Sender struct {
	Client    *http.Client
	Now       func() time.Time
	UserAgent string
}

// hideURL makes err, an error of net/url or net/http, name the URL's
// origin only: its path or query often holds the receiver's credential (a
// chat service's incoming-webhook URL), and the error is logged and kept
// as the subscription's last error. A redirect's URL goes the same way.
func hideURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		ue.URL = origin(ue.URL)
	}
	return err
}

// origin is the scheme and host of the URL raw, with "/…" when it has
// more: what an error may say of a receiver's URL.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<unparsable URL>"
	}
	o := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		o += "/…"
	}
	return o
}

// Send makes one attempt: nil means the receiver answered 2xx.
func (s *Sender) Send(ctx context.Context, r Request) error {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return fmt.Errorf("build request: %w", hideURL(err))
	}
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ts := now()
	req.Header.Set("Content-Type", "application/json")
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	req.Header.Set("webhook-id", r.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	if !r.Secret.IsZero() {
		req.Header.Set("webhook-signature", r.Secret.Sign(r.ID, ts, r.Body))
	}
	client := s.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w", r.ID, hideURL(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(snippet)), RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now())}
	}
	return nil
}

// retryAfter reads a Retry-After value (RFC 9110, 10.2.3): delay-seconds,
// or an HTTP-date taken relative to now.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}
