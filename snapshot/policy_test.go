package snapshot

import (
	"testing"
	"time"
)

func TestPolicyDue(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		p       Policy
		lastSeq int64
		applied int64
		after   time.Duration
		want    bool
	}{
		{"events reached", Policy{EveryEvents: 100}, 50, 150, 0, true},
		{"events not reached", Policy{EveryEvents: 100}, 50, 149, time.Hour, false},
		{"interval reached", Policy{EveryInterval: time.Minute}, 50, 51, time.Minute, true},
		{"interval not reached", Policy{EveryInterval: time.Minute}, 50, 51, time.Minute - 1, false},
		{"interval but nothing new", Policy{EveryInterval: time.Minute}, 50, 50, time.Hour, false},
		{"either: events", Policy{EveryEvents: 10, EveryInterval: time.Hour}, 0, 10, 0, true},
		{"either: time", Policy{EveryEvents: 10, EveryInterval: time.Hour}, 0, 1, time.Hour, true},
		{"either: neither", Policy{EveryEvents: 10, EveryInterval: time.Hour}, 0, 9, time.Hour - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Taken(tc.lastSeq, t0)
			if got := p.Due(tc.applied, 0, t0.Add(tc.after)); got != tc.want {
				t.Errorf("Due = %v; want %v", got, tc.want)
			}
		})
	}
}

// TestPolicyChanges checks the every_changes trigger: counted from the
// counter shown just before the last snapshot, started afresh when that is
// unknown (a resumed policy) or when the counter went back (a reloaded
// machine), and never earlier than the threshold.
func TestPolicyChanges(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := Policy{EveryChanges: 1000, EveryEvents: 1_000_000}
	if p.Due(10, 5000, t0) {
		t.Error("due at the first call: the counter at the last snapshot is unknown, counting starts here")
	}
	if p.Due(11, 5999, t0) {
		t.Error("due after 999 changes")
	}
	if !p.Due(12, 6000, t0) {
		t.Error("not due after 1000 changes")
	}
	p.Taken(12, t0)
	if p.Due(20, 6999, t0) {
		t.Error("due 999 changes after the snapshot")
	}
	if !p.Due(21, 7000, t0) {
		t.Error("not due 1000 changes after the snapshot")
	}
	// A reloaded machine counts from 0 again: counting restarts there.
	if p.Due(22, 10, t0) || p.Due(23, 1009, t0) {
		t.Error("due within 1000 changes of a counter that went back")
	}
	if !p.Due(24, 1010, t0) {
		t.Error("not due 1000 changes after the counter went back")
	}
	// A resumed policy (Taken before any Due) starts counting at its
	// first Due.
	var r Policy
	r.EveryChanges = 1000
	r.Taken(100, t0)
	if r.Due(101, 50_000, t0) {
		t.Error("resumed policy due at once: the changes before it are unknown")
	}
	if !r.Due(102, 51_000, t0) {
		t.Error("resumed policy not due 1000 changes after its first Due")
	}
	// Nothing new since the snapshot: not due, whatever the counter says.
	r.Taken(102, t0)
	if r.Due(102, 900_000, t0) {
		t.Error("due with no event since the snapshot")
	}
}

func TestPolicyTakenNeverGoesBack(t *testing.T) {
	var p Policy
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Taken(100, t0)
	p.Taken(50, t0.Add(time.Hour))
	if seq, at := p.Last(); seq != 100 || !at.Equal(t0) {
		t.Errorf("Last = %d, %s; want 100, %s", seq, at, t0)
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Policy: Policy{EveryEvents: 1000}}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	bad := Config{Policy: Policy{EveryEvents: -1}, ChunkSize: -5, Compression: "max", FenceName: ""}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, path := range []string{"policy", "every_events", "chunk_size", "compression", "fence_name"} {
		if !contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
	}
	if err := (Config{}).WithDefaults().Validate(); err == nil {
		t.Error("a policy with no trigger accepted")
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
