package notifier

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/causeway/causeway/notifier/subscription"
)

func TestParseConfigValid(t *testing.T) {
	b, err := os.ReadFile("testdata/config/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.PollInterval != 100*time.Millisecond || c.LeaseTTL != 20*time.Second || c.Delivery.MaxAge != 48*time.Hour ||
		c.Delivery.BackoffInitial != DefaultBackoffInitial || c.Delivery.BacklogPolicy != subscription.BacklogDeadLetter ||
		c.BatchSize != DefaultBatchSize || c.QueryTimeout != DefaultQueryTimeout || c.Secrets["team"].File != "/etc/causeway/team.whsec" {
		t.Fatalf("config %+v", c)
	}
	if s := c.Secrets["ops"].String(); strings.Contains(s, "MfKQ") {
		t.Fatalf("secret not redacted: %s", s)
	}
	// A per-subscription policy overrides the defaults.
	p := c.policyFor(subscription.Spec{Delivery: subscription.Delivery{MaxAge: subscription.Duration(time.Hour), BacklogPolicy: subscription.BacklogAlert}})
	if p.maxAge != time.Hour || p.backlogPolicy != subscription.BacklogAlert || p.maxBacklog != 5000 {
		t.Fatalf("policy %+v", p)
	}
}

// One fixture per failure mode: testdata/config/<case>.yaml and the
// substring its error must contain in <case>.want.
func TestParseConfigInvalid(t *testing.T) {
	wants, err := filepath.Glob("testdata/config/*.want")
	if err != nil || len(wants) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, w := range wants {
		name := strings.TrimSuffix(filepath.Base(w), ".want")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(w)
			if err != nil {
				t.Fatal(err)
			}
			in, err := os.ReadFile(strings.TrimSuffix(w, ".want") + ".yaml")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseConfig(in)
			if err == nil {
				t.Fatal("ParseConfig succeeded")
			}
			if !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
				t.Fatalf("error %q does not contain %q", err, strings.TrimSpace(string(want)))
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		// What loads is valid and has its defaults.
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config does not validate: %v", err)
		}
		if c.PollInterval <= 0 || c.BatchSize <= 0 {
			t.Fatalf("defaults missing: %+v", c)
		}
	})
}

func TestBackoff(t *testing.T) {
	n := &Notifier{jitter: func() float64 { return 1 }}
	w := &worker{n: n, pol: policy{backoffInitial: 100 * time.Millisecond, backoffMax: time.Second}}
	var got []time.Duration
	for a := range 6 {
		got = append(got, w.backoff(a))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff = %v, want %v ms (full jitter)", got, want)
		}
	}
	n.jitter = func() float64 { return 0 }
	if d := w.backoff(0); d != 50*time.Millisecond {
		t.Fatalf("backoff with no jitter = %v, want half", d)
	}
}

// TestLeaseOwnersDiffer: two processes given one instance_id hold leases
// under different names, so they never both drain one subscriber.
func TestLeaseOwnersDiffer(t *testing.T) {
	a, b := leaseOwner("n1"), leaseOwner("n1")
	if a == b || !strings.HasPrefix(a, "n1/") || !strings.HasPrefix(b, "n1/") {
		t.Errorf("lease owners %q and %q; want two names starting n1/", a, b)
	}
}
