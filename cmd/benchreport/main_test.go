package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/causeway/causeway/persister
BenchmarkPipeline/raw_insert/rows_per_commit=100-2         	       1	 1712345 ns/op	     58400 rows/s
BenchmarkPipeline/raw_publish-2                            	       1	 1712345 ns/op	     16200 msgs/s
BenchmarkPipeline/end_to_end/batch=500-2                   	       1	 1712345 ns/op	     12400 events/s	 393.0 p50_ms
pkg: github.com/causeway/causeway/graph
BenchmarkMemory/causeway/1000-2   1   100 ns/op   485 B/entity
BenchmarkMemory/gonum-simple/1000-2   1   100 ns/op   455 B/entity
BenchmarkMemory/causeway/100000-2   1   100 ns/op   428 B/entity
BenchmarkMemory/gonum-simple/100000-2   1   100 ns/op   433 B/entity
PASS
`

func TestReport(t *testing.T) {
	var out bytes.Buffer
	if code := run(strings.NewReader(sample), &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"Pipeline/end_to_end/batch=500", "12400 events/s 393 p50_ms",
		"Memory/causeway/1000 / Memory/gonum-simple/1000 B/entity 1.07",
		"Pipeline/end_to_end/batch=500 / Pipeline/raw_insert/rows_per_commit=100 events/s / rows/s 0.212",
		"Pipeline/end_to_end/batch=500 / Pipeline/raw_publish events/s / msgs/s 0.765",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	// Sizes pair with their own size only.
	for _, wrong := range []string{"Memory/causeway/1000 / Memory/gonum-simple/100000", "Memory/causeway/100000 / Memory/gonum-simple/1000 "} {
		if strings.Contains(got, wrong) {
			t.Errorf("report pairs different sizes: %q", wrong)
		}
	}
	if !strings.Contains(got, "Memory/causeway/100000 / Memory/gonum-simple/100000 B/entity 0.988") {
		t.Errorf("report lacks the 100000 pair:\n%s", got)
	}
}

func TestFailureIsReported(t *testing.T) {
	var out bytes.Buffer
	if code := run(strings.NewReader("pkg: x\n--- FAIL: BenchmarkX\nFAIL\n"), &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
}

// A benchmark that skipped has no figures: the report says so, rather
// than leave it out as if it had never been asked for.
func TestSkipIsReported(t *testing.T) {
	in := `pkg: github.com/causeway/causeway/processor
--- SKIP: BenchmarkE2EFailover/entities=10000
    failover_e2e_bench_test.go:30: CAUSEWAY_TEST_MYSQL_DSN is not set; skipping MariaDB integration test
BenchmarkRaw/raw-2   1   100 ns/op
PASS
`
	var out bytes.Buffer
	if code := run(strings.NewReader(in), &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	report := out.String()[strings.Index(out.String(), "Causeway benchmark report"):]
	if !strings.Contains(report, "SKIPPED") || !strings.Contains(report, "processor: E2EFailover/entities=10000") {
		t.Errorf("the report does not name the skipped benchmark:\n%s", report)
	}
}
