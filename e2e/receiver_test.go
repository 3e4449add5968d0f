//go:build e2e

package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/causeway/causeway/notifier/webhook"
)

// receiver is a webhook subscriber: it verifies each request's Standard
// Webhooks signature and timestamp, deduplicates on webhook-id and keeps
// the order in which ids first arrived. With failEvery > 0 it answers 500
// to every failEvery-th request, so the notifier must retry in order.
type receiver struct {
	sub       string // subscription id
	secretRef string
	secret    webhook.Secret
	failEvery int
	srv       *httptest.Server

	mu       sync.Mutex
	order    []string // webhook ids in order of first arrival
	seen     map[string]int
	bodies   map[string][32]byte // sha256 of each id's body at its first delivery
	changed  []string            // ids delivered again with another body
	requests int
	refused  int // answered 500 on purpose
	badSig   []string
}

func newReceiver(t *testing.T, sub, secretRef string, failEvery int) *receiver {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret, err := webhook.NewSecret(key)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{sub: sub, secretRef: secretRef, secret: secret, failEvery: failEvery, seen: map[string]int{}, bodies: map[string][32]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	if problem := r.verify(id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body); problem != "" {
		r.mu.Lock()
		r.badSig = append(r.badSig, id+": "+problem)
		r.mu.Unlock()
		http.Error(w, problem, http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.requests++
	if r.failEvery > 0 && r.requests%r.failEvery == 0 {
		r.refused++
		r.mu.Unlock()
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	if r.seen[id] == 0 {
		r.order = append(r.order, id)
		r.bodies[id] = sum
	} else if r.bodies[id] != sum {
		r.changed = append(r.changed, id)
	}
	r.seen[id]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// verify checks a request the Standard Webhooks way: a fresh timestamp and
// one of the space-separated v1 signatures matching HMAC-SHA256 of
// id.timestamp.body.
func (r *receiver) verify(id, ts, sigs string, body []byte) string {
	if id == "" {
		return "no webhook-id"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "bad webhook-timestamp " + strconv.Quote(ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "stale webhook-timestamp " + ts
	}
	want := []byte(r.secret.Sign(id, time.Unix(sec, 0), body))
	for _, s := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(s), want) == 1 {
			return ""
		}
	}
	return "no valid signature"
}

type receiverStats struct {
	order    []string
	dups     int // deliveries of an id already delivered (allowed: at least once)
	requests int
	refused  int
	badSig   []string
	bodies   map[string][32]byte
	changed  []string
}

func (r *receiver) stats() receiverStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := receiverStats{order: append([]string(nil), r.order...), requests: r.requests, refused: r.refused, badSig: append([]string(nil), r.badSig...),
		bodies: maps.Clone(r.bodies), changed: append([]string(nil), r.changed...)}
	for _, n := range r.seen {
		s.dups += n - 1
	}
	return s
}

func (r *receiver) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}
