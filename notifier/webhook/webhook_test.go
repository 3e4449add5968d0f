package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// verify is an independent Standard Webhooks verifier, written from the
// spec text (spec/standard-webhooks.md, "Verifying webhooks"), sharing no
// code with the signer: strip whsec_, base64-decode the key, HMAC-SHA256
// over "<id>.<timestamp>.<body>", base64; the header holds space-delimited
// "<version>,<signature>" pairs, any v1 match (constant time) passes; the
// timestamp must be within the tolerance of now.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing required headers")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	const tolerance = 5 * 60
	if d := now.Unix() - sec; d > tolerance || d < -tolerance {
		return errors.New("timestamp outside tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("bad secret")
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+"."+string(body))
	want := mac.Sum(nil)
	for _, versioned := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(versioned, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// The published test vector of the Standard Webhooks reference libraries.
func TestSignVector(t *testing.T) {
	s, err := ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Sign("msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if s.String() == s.Encode() || strings.Contains(s.String(), "MfKQ") {
		t.Fatalf("String does not redact: %s", s)
	}
}

func TestParseSecret(t *testing.T) {
	for _, in := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 8))} {
		if _, err := ParseSecret(in); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", in)
		}
	}
}

func TestSendVerifiedByIndependentVerifier(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	s, err := ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	type got struct {
		h    http.Header
		body []byte
	}
	reqs := make(chan got, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- got{r.Header.Clone(), b}
		if r.Header.Get("X-Fail") != "" {
			http.Error(w, "nope", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	snd := &Sender{Client: srv.Client(), Now: func() time.Time { return now }}
	body := []byte(`{"alarm":"nic down","n":1}`)
	if err := snd.Send(context.Background(), Request{URL: srv.URL, ID: "msg_1", Body: body, Secret: s, Headers: map[string]string{"X-Team": "ops"}}); err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if err := verify(secret, r.h, r.body, now); err != nil {
		t.Fatalf("independent verifier: %v", err)
	}
	if r.h.Get("X-Team") != "ops" || r.h.Get("Content-Type") != "application/json" || r.h.Get("webhook-id") != "msg_1" {
		t.Fatalf("headers: %v", r.h)
	}
	// Tampering with the body, the id, the timestamp or the secret fails.
	if err := verify(secret, r.h, []byte(`{"alarm":"nic up","n":1}`), now); err == nil {
		t.Error("tampered body verified")
	}
	h := r.h.Clone()
	h.Set("webhook-id", "msg_2")
	if err := verify(secret, h, r.body, now); err == nil {
		t.Error("changed id verified")
	}
	h = r.h.Clone()
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
	if err := verify(secret, h, r.body, now); err == nil {
		t.Error("changed timestamp verified")
	}
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("ffffffffffffffffffffffffffffffff"))
	if err := verify(other, r.h, r.body, now); err == nil {
		t.Error("wrong secret verified")
	}
	if err := verify(secret, r.h, r.body, now.Add(10*time.Minute)); err == nil {
		t.Error("stale timestamp verified")
	}
	// A non-2xx answer is a StatusError.
	err = snd.Send(context.Background(), Request{URL: srv.URL, ID: "msg_3", Body: body, Headers: map[string]string{"X-Fail": "1"}})
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
		t.Fatalf("Send to a failing receiver = %v, want a 503 StatusError", err)
	}
	if r := <-reqs; r.h.Get("webhook-signature") != "" {
		t.Fatal("an unsigned request carries a signature")
	}
}

// A non-2xx answer carries its Retry-After, in seconds or as a date.
func TestStatusErrorRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{" 7 ", 7 * time.Second},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"-5", 0},
		{"soon", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		snd := &Sender{Client: srv.Client(), Now: func() time.Time { return now }}
		err := snd.Send(context.Background(), Request{URL: srv.URL, ID: "msg_1", Body: []byte(`{}`)})
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests {
			t.Fatalf("Retry-After %q: Send = %v, want a 429 StatusError", tc.header, err)
		}
		if se.RetryAfter != tc.want {
			t.Errorf("Retry-After %q: RetryAfter = %s, want %s", tc.header, se.RetryAfter, tc.want)
		}
	}
}

// TestSendErrorHidesTheURLsPathAndQuery: a receiver URL often carries its
// credential in the path or the query (a chat service's incoming-webhook
// URL); the error of a failed attempt, which the notifier logs and keeps
// as the subscription's last_error, said the whole URL. It names the
// scheme and host only.
func TestSendErrorHidesTheURLsPathAndQuery(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close() // no answer: the client's error names the URL
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	const token = "T0KEN-in-the-path"
	s := &Sender{}
	err = s.Send(context.Background(), Request{URL: "http://" + ln.Addr().String() + "/services/" + token + "?sig=" + token, ID: "msg_1", Body: []byte("{}")})
	if err == nil {
		t.Fatal("a receiver that closes the connection: no error")
	}
	if strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q; want the host %s without the path or the query", err, ln.Addr())
	}
}
