package templatetest

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// TestGoldenScenarios runs the golden scenario specs of testdata/scenarios.
func TestGoldenScenarios(t *testing.T) {
	specs, err := filepath.Glob("../../testdata/scenarios/*/spec.yaml")
	if err != nil || len(specs) == 0 {
		t.Fatalf("no specs found (%v)", err)
	}
	for _, s := range specs {
		t.Run(filepath.Base(filepath.Dir(s)), func(t *testing.T) {
			var out bytes.Buffer
			res, err := Run(context.Background(), []string{s}, &out)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, out.String())
			}
			if !res.OK() || res.Checks == 0 {
				t.Errorf("%d failure(s), %d check(s):\n%s", res.Failures, res.Checks, out.String())
			}
			t.Log(out.String())
		})
	}
}
