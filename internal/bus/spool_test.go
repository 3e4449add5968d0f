package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
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
		{messageID: "e3", routingKey: "alertmanager.entity.upsert", body: []byte(`{"v":1}`), enqueued: 5, reason: "too large"},
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
		"v3": encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7, reason: "why"}),
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
	f.Add(encodeRecord(record{messageID: "e1", routingKey: "a.b", body: []byte("body"), enqueued: 7, reason: "why"}))
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
	return openTestSpoolCompacting(t, path, maxBytes, maxEvents, spoolCompactMin)
}

// openTestSpoolCompacting is openTestSpool compacting from compactMin.
func openTestSpoolCompacting(t *testing.T, path string, maxBytes int64, maxEvents int, compactMin int64) *spool {
	t.Helper()
	s, err := openSpool(path, maxBytes, maxEvents, compactMin, nil, testLogger(t))
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

// testCompactMin is the compaction threshold of the tests' spools: a
// backlog of bigVals fills a file past it many times over.
const testCompactMin = 1 << 20

func openCompactingSpool(t *testing.T, path string) *spool {
	t.Helper()
	return openTestSpoolCompacting(t, path, 1<<30, 1_000_000, testCompactMin)
}

// bigVals are n records of about 1 KiB.
func bigVals(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = encodeRecord(record{messageID: fmt.Sprintf("%s-%d", prefix, i), routingKey: "t.tick", body: bytes.Repeat([]byte("x"), 1024)})
	}
	return out
}

// fillSpool appends a backlog of 4 MiB, in commits of 500 records, and
// returns what the spool then holds.
func fillSpool(t *testing.T, s *spool) []record {
	t.Helper()
	for i := range 8 {
		if err := s.append(context.Background(), bigVals(fmt.Sprint("backlog", i), 500)); err != nil {
			t.Fatal(err)
		}
	}
	return readAll(t, s)
}

func keysOf(recs []record) []uint64 {
	keys := make([]uint64, len(recs))
	for i, r := range recs {
		keys[i] = r.key
	}
	return keys
}

func idsOf(recs []record) []string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.messageID
	}
	return ids
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// settle returns once the committer has finished what the removals queued
// before it set off: the first flush commits them, and a compaction runs
// after that commit's waiters are answered, before the committer takes the
// second flush.
func settle(t *testing.T, s *spool) {
	t.Helper()
	for range 2 {
		if err := s.flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpoolCompactsOnceDrained: a spool file that a backlog grew shrinks
// back once the backlog has drained to the records still in flight, which
// keep their keys; keys keep growing after it, and the file reopens.
func TestSpoolCompactsOnceDrained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openCompactingSpool(t, path)
	backlog := fillSpool(t, s)
	if size := fileSize(t, path); size < 4*testCompactMin {
		t.Fatalf("a backlog of %d records made a file of %d bytes, want at least %d", len(backlog), size, 4*testCompactMin)
	}
	inFlight := backlog[len(backlog)-2:]
	s.remove(keysOf(backlog[:len(backlog)-2]))
	settle(t, s)
	if size := fileSize(t, path); size >= testCompactMin {
		t.Fatalf("drained spool file is %d bytes, want it compacted below %d", size, testCompactMin)
	}
	if got := s.compactions.Load(); got != 1 {
		t.Fatalf("compactions = %d, want 1", got)
	}
	if _, err := os.Stat(path + compactSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("compaction left its copy behind: %v", err)
	}
	if diff := cmp.Diff(inFlight, readAll(t, s), cmp.AllowUnexported(record{})); diff != "" {
		t.Fatalf("records in flight after compaction (-want +got):\n%s", diff)
	}
	if err := s.append(context.Background(), vals("after", 1)); err != nil {
		t.Fatal(err)
	}
	s.remove(keysOf(inFlight))
	if err := s.flush(); err != nil {
		t.Fatal(err)
	}
	after := readAll(t, s)
	if len(after) != 1 || after[0].messageID != "after-0" || after[0].key <= backlog[len(backlog)-1].key {
		t.Fatalf("after compaction, removing the records in flight and appending one, the spool holds %+v; want after-0 with a key above %d", after, backlog[len(backlog)-1].key)
	}
	if n, b := s.size(); n != 1 || b != int64(len(encodeRecord(after[0]))) {
		t.Fatalf("size = %d events %d bytes, want 1 event of %d", n, b, len(encodeRecord(after[0])))
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s2 := openCompactingSpool(t, path)
	if diff := cmp.Diff(after, readAll(t, s2), cmp.AllowUnexported(record{})); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	if got := s2.compactions.Load(); got != 0 {
		t.Fatalf("compactions of a small spool at open = %d, want 0", got)
	}
}

// TestSpoolAppendsDuringCompaction: appends (and a read of the sender)
// that arrive while a compaction runs wait for it and are committed into
// the new file: none is lost.
func TestSpoolAppendsDuringCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openCompactingSpool(t, path)
	backlog := fillSpool(t, s)
	compacting, release := make(chan struct{}), make(chan struct{})
	s.compactHook = func() {
		close(compacting)
		<-release
	}
	s.remove(keysOf(backlog))
	select {
	case <-compacting:
	case <-time.After(10 * time.Second):
		t.Fatal("no compaction within 10s of the spool's draining")
	}

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	var want []string
	for i := range 50 {
		prefix := fmt.Sprint("during", i)
		want = append(want, prefix+"-0", prefix+"-1")
		wg.Go(func() { errs <- s.append(ctx, vals(prefix, 2)) })
	}
	read := make(chan []record, 1)
	wg.Go(func() {
		recs, _, err := s.read(0, 1000)
		if err != nil {
			t.Error(err)
		}
		read <- recs
	})
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pending) == 50 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.compactions.Load(); got != 1 {
		t.Fatalf("compactions = %d, want 1", got)
	}
	for _, r := range <-read {
		if !slices.Contains(want, r.messageID) {
			t.Fatalf("a read during the compaction returned %s, which is not an append made during it", r.messageID)
		}
	}
	check := func(s *spool) {
		t.Helper()
		recs := readAll(t, s)
		if diff := cmp.Diff(want, idsOf(recs), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Fatalf("appended during compaction (-want +got):\n%s", diff)
		}
		if recs[0].key <= backlog[len(backlog)-1].key {
			t.Fatalf("key %d after compaction is not above the backlog's last, %d", recs[0].key, backlog[len(backlog)-1].key)
		}
	}
	check(s)
	if size := fileSize(t, path); size >= testCompactMin {
		t.Fatalf("spool file is %d bytes, want it compacted below %d", size, testCompactMin)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	check(openCompactingSpool(t, path))
}

// TestSpoolOpensAfterACrashMidCompaction: a crash during a compaction,
// before its rename, leaves the spool file as it was and the copy beside
// it, complete or not; the spool opens with its records and the copy is
// removed.
func TestSpoolOpensAfterACrashMidCompaction(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spool.db")
	s := openCompactingSpool(t, path)
	backlog := fillSpool(t, s)
	kept := backlog[len(backlog)-1:]
	// The files as a crash between the copy and its rename leaves them.
	crashed := filepath.Join(dir, "crashed")
	if err := os.Mkdir(crashed, 0o750); err != nil {
		t.Fatal(err)
	}
	s.compactHook = func() {
		for _, f := range []string{path, path + compactSuffix} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Error(err)
				return
			}
			if err := os.WriteFile(filepath.Join(crashed, filepath.Base(f)), b, 0o600); err != nil {
				t.Error(err)
			}
		}
	}
	s.remove(keysOf(backlog[:len(backlog)-1]))
	settle(t, s)
	if got := s.compactions.Load(); got != 1 {
		t.Fatalf("compactions = %d, want 1", got)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(filepath.Join(crashed, "spool.db"+compactSuffix))
	if err != nil {
		t.Fatal(err)
	}
	for name, leftover := range map[string][]byte{
		"complete copy": copied,
		"partial copy":  copied[:len(copied)/3],
		"empty copy":    nil,
		"garbage":       bytes.Repeat([]byte{0xde, 0xad}, 5000),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "spool.db")
			old, err := os.ReadFile(filepath.Join(crashed, "spool.db"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, old, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p+compactSuffix, leftover, 0o600); err != nil {
				t.Fatal(err)
			}
			s := openCompactingSpool(t, p)
			if _, err := os.Stat(p + compactSuffix); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the leftover copy is still there: %v", err)
			}
			if diff := cmp.Diff(kept, readAll(t, s), cmp.AllowUnexported(record{})); diff != "" {
				t.Fatalf("spool after the crash (-want +got):\n%s", diff)
			}
			// The old file had drained: it is compacted now.
			if got := s.compactions.Load(); got != 1 {
				t.Fatalf("compactions at open = %d, want 1", got)
			}
			if err := s.append(context.Background(), vals("after", 1)); err != nil {
				t.Fatal(err)
			}
			if all := readAll(t, s); len(all) != 2 || all[1].key <= kept[0].key {
				t.Fatalf("after an append the spool holds %+v", all)
			}
		})
	}
}

// TestSpoolCompactsAtOpen: a spool that drained in an earlier run (or
// under a release that did not compact) is compacted when it is opened.
func TestSpoolCompactsAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTestSpool(t, path, 1<<30, 1_000_000) // compacts from spoolCompactMin only
	backlog := fillSpool(t, s)
	s.remove(keysOf(backlog))
	settle(t, s)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	before := fileSize(t, path)
	if before < 4*testCompactMin {
		t.Fatalf("drained spool file of %d bytes, want the backlog's size", before)
	}
	s2 := openCompactingSpool(t, path)
	if size := fileSize(t, path); size >= testCompactMin {
		t.Fatalf("drained spool file of %d bytes is %d bytes after open, want it compacted below %d", before, size, testCompactMin)
	}
	if got := s2.compactions.Load(); got != 1 {
		t.Fatalf("compactions = %d, want 1", got)
	}
	if err := s2.append(context.Background(), vals("after", 1)); err != nil {
		t.Fatal(err)
	}
	if all := readAll(t, s2); len(all) != 1 || all[0].key <= backlog[len(backlog)-1].key {
		t.Fatalf("after an append the spool holds %+v; want one record with a key above %d", all, backlog[len(backlog)-1].key)
	}
}

// TestSpoolCommitsWaitForTheCompactionsDirectory: once a compaction has
// renamed its copy over the spool file, a commit into the copy is accepted
// only when the directory is fsynced: else a crash could bring back the
// old file, without it.
func TestSpoolCommitsWaitForTheCompactionsDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openCompactingSpool(t, path)
	backlog := fillSpool(t, s)
	errDisk := errors.New("disk says no")
	var failing atomic.Bool
	failing.Store(true)
	s.syncDir = func(dir string) error {
		if failing.Load() {
			return errDisk
		}
		return syncDir(dir)
	}
	s.remove(keysOf(backlog))
	settle(t, s)
	if size := fileSize(t, path); size >= testCompactMin {
		t.Fatalf("spool file is %d bytes, want the copy renamed over it", size)
	}
	ctx := context.Background()
	if err := s.append(ctx, vals("unsynced", 1)); !errors.Is(err, errDisk) {
		t.Fatalf("append before the directory is fsynced: %v, want %v", err, errDisk)
	}
	if n, b := s.size(); n != 0 || b != 0 {
		t.Fatalf("a failed append left %d events %d bytes reserved", n, b)
	}
	failing.Store(false)
	if err := s.append(ctx, vals("synced", 1)); err != nil {
		t.Fatalf("append once the directory fsyncs: %v", err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if got := idsOf(readAll(t, openCompactingSpool(t, path))); !cmp.Equal(got, []string{"synced-0"}) {
		t.Fatalf("after reopen the spool holds %v, want [synced-0]", got)
	}
}

// TestSpoolNewFileWaitsForItsDirectory: a spool file openSpool creates
// (and a directory it creates for it) is only named in directories that a
// crash may still roll back, so no append into it is acknowledged until
// they are fsynced: else the file of events answered as accepted could be
// gone after a power loss. A spool file that exists costs no such fsync.
func TestSpoolNewFileWaitsForItsDirectory(t *testing.T) {
	parent := t.TempDir()
	path := filepath.Join(parent, "spool", "spool.db")
	s := openTestSpool(t, path, 1<<20, 100)
	errDisk := errors.New("disk says no")
	var failing atomic.Bool
	failing.Store(true)
	var mu sync.Mutex
	var synced []string
	s.syncDir = func(dir string) error {
		if failing.Load() {
			return errDisk
		}
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return syncDir(dir)
	}
	ctx := context.Background()
	if err := s.append(ctx, vals("unsynced", 1)); !errors.Is(err, errDisk) {
		t.Fatalf("append into a new spool file before its directory is fsynced: %v, want %v", err, errDisk)
	}
	failing.Store(false)
	if err := s.append(ctx, vals("synced", 1)); err != nil {
		t.Fatalf("append once the directories fsync: %v", err)
	}
	mu.Lock()
	got := slices.Sorted(slices.Values(synced))
	mu.Unlock()
	if want := []string{parent, filepath.Dir(path)}; !cmp.Equal(got, want) {
		t.Fatalf("fsynced directories %v, want %v (the new file's and the new directory's)", got, want)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSpool(t, path, 1<<20, 100)
	s.syncDir = func(string) error { return errDisk }
	if err := s.append(ctx, vals("again", 1)); err != nil {
		t.Fatalf("append into a spool file that existed: %v, want no directory fsync", err)
	}
	if got := idsOf(readAll(t, s)); !cmp.Equal(got, []string{"synced-0", "again-0"}) {
		t.Fatalf("spool holds %v, want [synced-0 again-0]", got)
	}
}
