package api

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// appliedAhead is a node whose status has applied one record more than
// the view a handler read: a record applied between the two, as the
// processor's apply does while a request is served.
type appliedAhead struct{ *fakeBackend }

func (b appliedAhead) Status(ctx context.Context) Status {
	st := b.fakeBackend.Status(ctx)
	st.AppliedSeq++
	return st
}

// TestTemplateCheckSaysTheSeqItReadAt: validate, and an add refused, check
// a template against the definitions of the view they read; their answers
// said the status's seq, read after it, which may hold a definition the
// check did not see (a 409 "not loaded" at a seq where it is loaded). They
// say the view's seq, in header and body.
func TestTemplateCheckSaysTheSeqItReadAt(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "graph", "template", "testdata", "valid", "v2_uses_definition.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b := appliedAhead{&fakeBackend{g: sampleGraph(), seq: 40}}
	s, err := New(Config{Listen: "127.0.0.1:0", Tokens: []Token{{Name: "a", Token: "admin-token", Role: RoleAdmin}}},
		b, Deps{NodeID: "n1", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	for _, c := range []struct{ path, body string }{
		{"/v1/templates/validate", string(raw)},
		{"/v1/templates/validate", validTemplate},
		{"/v1/templates", string(raw)},
		{"/v1/templates", "metadata: {version: 3}\n"},
	} {
		resp, body := do(t, ts, "POST", c.path, "admin-token", "application/yaml", c.body)
		var v ValidateResponse
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("POST %s: %d %s", c.path, resp.StatusCode, body)
		}
		if h := resp.Header.Get(HeaderSeq); h != "40" || v.Seq != 40 {
			t.Errorf("POST %s: %d, %s %q, body seq %d; want 40, the seq of the view checked against", c.path, resp.StatusCode, HeaderSeq, h, v.Seq)
		}
	}
}
