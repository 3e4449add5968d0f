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
	// A step asks Due(seq, changes), or records a snapshot of seq (taken).
	type step struct {
		seq, changes         int64
		taken, resumed, want bool
		why                  string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"counted from the last snapshot", []step{
			{seq: 10, changes: 5000, why: "the counter at the last snapshot is unknown: counting starts here"},
			{seq: 11, changes: 5999, why: "999 changes"},
			{seq: 12, changes: 6000, want: true, why: "1000 changes"},
			{seq: 12, taken: true},
			{seq: 20, changes: 6999, why: "999 changes after the snapshot"},
			{seq: 21, changes: 7000, want: true, why: "1000 changes after the snapshot"},
			{seq: 22, changes: 10, why: "a reloaded machine counts from 0 again: counting restarts"},
			{seq: 23, changes: 1009, why: "999 changes after the counter went back"},
			{seq: 24, changes: 1010, want: true, why: "1000 changes after the counter went back"},
		}},
		{"resumed (taken before any Due)", []step{
			{seq: 100, taken: true},
			{seq: 101, changes: 50_000, why: "the changes before the first Due are unknown"},
			{seq: 102, changes: 51_000, want: true, why: "1000 changes after the first Due"},
			{seq: 102, taken: true},
			{seq: 102, changes: 900_000, why: "no event since the snapshot"},
		}},
		{"leading again", []step{
			{seq: 10, changes: 5000},
			{seq: 12, changes: 6000, want: true},
			{seq: 12, taken: true},
			{seq: 12, resumed: true, why: "its own snapshot is the newest: the counter at it is known"},
			{seq: 13, changes: 6999, why: "999 changes after its own snapshot"},
			{seq: 14, changes: 7000, want: true, why: "1000 changes after its own snapshot"},
			{seq: 500, resumed: true, why: "another leader's snapshot: the counter at it is unknown"},
			{seq: 501, changes: 90_000, why: "the changes before the first Due after resuming are unknown"},
			{seq: 502, changes: 90_999, why: "999 changes after that Due"},
			{seq: 503, changes: 91_000, want: true, why: "1000 changes after that Due"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{EveryChanges: 1000, EveryEvents: 1_000_000}
			for i, s := range tc.steps {
				if s.taken {
					p.Taken(s.seq, t0)
					continue
				}
				if s.resumed {
					p.Resumed(s.seq, t0)
					continue
				}
				if got := p.Due(s.seq, s.changes, t0); got != s.want {
					t.Errorf("step %d: Due(%d, %d) = %v (%s)", i, s.seq, s.changes, got, s.why)
				}
			}
		})
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
	if good.Encoding != "bin" || good.NodeEncoding() != NodeBin || good.EngineEncoding() != EngineBin {
		t.Errorf("default encoding %q (%s, %s), want bin", good.Encoding, good.NodeEncoding(), good.EngineEncoding())
	}
	if g := (Config{Encoding: "gob"}); g.NodeEncoding() != NodeGob || g.EngineEncoding() != EngineGob {
		t.Errorf("gob: %s, %s", g.NodeEncoding(), g.EngineEncoding())
	}
	bad := Config{Policy: Policy{EveryEvents: -1}, ChunkSize: -5, Compression: "max", FenceName: "", Encoding: "json"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, path := range []string{"policy", "every_events", "chunk_size", "compression", "fence_name", "encoding"} {
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
