package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []record{
		{},
		{messageID: "e1", routingKey: "static.entity.upsert", body: []byte(`{"v":1}`), enqueued: 1234567890},
		{messageID: string(bytes.Repeat([]byte("x"), 300)), body: bytes.Repeat([]byte{0}, 70000), enqueued: -1},
		{messageID: "e2", routingKey: "replay.entity.upsert", body: []byte(`{"v":1}`), enqueued: 5, recordedAt: 1772366400000000000},
	} {
		got, err := decodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatalf("decode(encode(%q)): %v", r.messageID, err)
		}
		if diff := cmp.Diff(r, got, cmp.AllowUnexported(record{}), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeRecordRefusesDamage(t *testing.T) {
	cases := map[string][]byte{"empty": nil}
	for v, good := range map[string][]byte{
		"v1": encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7}),
		"v2": encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7, recordedAt: 9}),
	} {
		cases[v+" truncated"] = good[:len(good)-1]
		cases[v+" extended"] = append(append([]byte(nil), good...), 0)
		for i := range good {
			b := append([]byte(nil), good...)
			b[i] ^= 0x40
			cases[fmt.Sprintf("%s bit flip at %d", v, i)] = b
		}
	}
	for name, b := range cases {
		if _, err := decodeRecord(b); !errors.Is(err, errRecordCorrupt) {
			t.Errorf("%s: err = %v, want errRecordCorrupt", name, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7}))
	f.Add(encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7, recordedAt: 9}))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errRecordCorrupt) {
				t.Fatalf("error %v does not wrap errRecordCorrupt", err)
			}
			return
		}
		// What decodes must encode back to the same bytes.
		if again := encodeRecord(r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", b, again)
		}
	})
}

func openTestSpool(t *testing.T, path string, maxBytes int64, maxEvents int) *spool {
	t.Helper()
	s, err := openSpool(path, maxBytes, maxEvents, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

func vals(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = encodeRecord(record{messageID: fmt.Sprintf("%s-%d", prefix, i), routingKey: "t.tick", body: []byte("{}")})
	}
	return out
}

func readAll(t *testing.T, s *spool) []record {
	t.Helper()
	recs, bad, err := s.read(0, 1<<30)
	if err != nil || len(bad) != 0 {
		t.Fatalf("read: %v, bad %v", err, bad)
	}
	return recs
}

func TestSpoolAppendReadRemoveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "spool.db")
	s := openTestSpool(t, path, 1<<20, 1000)
	ctx := context.Background()
	if err := s.append(ctx, vals("a", 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.append(ctx, vals("b", 2)); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, s)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.messageID)
	}
	if diff := cmp.Diff([]string{"a-0", "a-1", "a-2", "b-0", "b-1"}, ids); diff != "" {
		t.Fatalf("spool order (-want +got):\n%s", diff)
	}
	// read after a key continues from there.
	next, _, err := s.read(recs[1].key, 2)
	if err != nil || len(next) != 2 || next[0].messageID != "a-2" {
		t.Fatalf("read after %d = %v, %v", recs[1].key, next, err)
	}
	s.remove([]uint64{recs[0].key, recs[3].key, 999999})
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.size(); n != 3 {
		t.Fatalf("size after remove = %d, want 3", n)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if err := s.append(ctx, vals("c", 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}

	s2 := openTestSpool(t, path, 1<<20, 1000)
	n, b := s2.size()
	var wantBytes int64
	ids = ids[:0]
	for _, r := range readAll(t, s2) {
		ids = append(ids, r.messageID)
		wantBytes += int64(len(encodeRecord(r)))
	}
	if diff := cmp.Diff([]string{"a-1", "a-2", "b-1"}, ids); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if n != 3 || b != wantBytes {
		t.Fatalf("size after reopen = %d events %d bytes, want 3, %d", n, b, wantBytes)
	}
	// New keys keep growing after a reopen, so order holds.
	if err := s2.append(ctx, vals("d", 1)); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s2)
	if last := all[len(all)-1]; last.messageID != "d-0" || last.key <= all[len(all)-2].key {
		t.Fatalf("appended after reopen: %+v", all)
	}
}

func TestSpoolLimits(t *testing.T) {
	one := vals("x", 1)[0]
	ctx := context.Background()
	t.Run("events", func(t *testing.T) {
		s := openTestSpool(t, filepath.Join(t.TempDir(), "s.db"), 1<<20, 3)
		if err := s.append(ctx, vals("a", 2)); err != nil {
			t.Fatal(err)
		}
		if err := s.append(ctx, vals("b", 2)); !errors.Is(err, ErrSpoolFull) {
			t.Fatalf("append over the event limit: %v, want ErrSpoolFull", err)
		}
		if err := s.append(ctx, vals("c", 1)); err != nil {
			t.Fatalf("append up to the limit: %v", err)
		}
		recs := readAll(t, s)
		if len(recs) != 3 {
			t.Fatalf("spool holds %d, want 3 (a refused call spools nothing)", len(recs))
		}
		s.remove([]uint64{recs[0].key})
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
		if err := s.append(ctx, vals("d", 1)); err != nil {
			t.Fatalf("append after room was made: %v", err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s := openTestSpool(t, filepath.Join(t.TempDir(), "s.db"), int64(2*len(one)), 100)
		if err := s.append(ctx, [][]byte{one, one}); err != nil {
			t.Fatal(err)
		}
		if err := s.append(ctx, [][]byte{one}); !errors.Is(err, ErrSpoolFull) {
			t.Fatalf("append over the byte limit: %v, want ErrSpoolFull", err)
		}
	})
}

// TestSpoolGroupCommit holds the first commit until 50 other appends are
// queued, and checks that they all share the next commit.
func TestSpoolGroupCommit(t *testing.T) {
	s := openTestSpool(t, filepath.Join(t.TempDir(), "s.db"), 1<<20, 1000)
	release := make(chan struct{})
	var mu sync.Mutex
	var commits []int
	s.commitHook = func(n int, _ time.Duration) {
		mu.Lock()
		commits = append(commits, n)
		first := len(commits) == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 51)
	wg.Go(func() { errs <- s.append(ctx, vals("first", 1)) })
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(commits) == 1 })
	for i := range 50 {
		wg.Go(func() { errs <- s.append(ctx, vals(fmt.Sprint("w", i), 2)) })
	}
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pending) == 50 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 100}, commits); diff != "" {
		t.Fatalf("records per commit (-want +got):\n%s", diff)
	}
}

func TestSpoolQuarantine(t *testing.T) {
	s := openTestSpool(t, filepath.Join(t.TempDir(), "s.db"), 1<<20, 100)
	ctx := context.Background()
	if err := s.append(ctx, [][]byte{vals("a", 1)[0], []byte("garbage"), vals("b", 1)[0]}); err != nil {
		t.Fatal(err)
	}
	recs, bad, err := s.read(0, 10)
	if err != nil || len(recs) != 2 || len(bad) != 1 {
		t.Fatalf("read = %d records, bad %v, %v; want 2 and one bad", len(recs), bad, err)
	}
	if err := s.quarantine(bad); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.size(); n != 2 {
		t.Fatalf("size after quarantine = %d, want 2", n)
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSpoolCloseCommitsRemovals: deletions are batched lazily, but a clean
// close commits them, so a restart does not re-send what was confirmed.
func TestSpoolCloseCommitsRemovals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTestSpool(t, path, 1<<20, 100)
	if err := s.append(context.Background(), vals("a", 3)); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, s)
	s.remove([]uint64{recs[0].key, recs[1].key})
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTestSpool(t, path, 1<<20, 100)
	if got := readAll(t, s2); len(got) != 1 || got[0].messageID != "a-2" {
		t.Fatalf("after close and reopen the spool holds %+v, want only a-2", got)
	}
}
