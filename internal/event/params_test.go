package event

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestTemplateParams: a template.put carries the values of its template's
// parameters (Vitrage's `template add --params`). The wire forms of
// testdata are exact: one without params is what every release wrote (an
// event of the log reads and encodes as before), and one with params
// reads, encodes back to the same bytes, and reads the same by the fast
// path as by encoding/json.
func TestTemplateParams(t *testing.T) {
	for _, tc := range []struct {
		file   string
		params map[string]string
	}{
		{"template_put.json", nil},
		{"template_put_params.json", map[string]string{"severity": "CRITICAL", "template_name": "host_cpu"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			golden, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			golden = bytes.TrimSuffix(golden, []byte("\n"))
			ev, err := Decode(golden)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := ev.Template.Params; !maps.Equal(got, tc.params) {
				t.Errorf("params %v, want %v", got, tc.params)
			}
			out, err := Encode(ev)
			if err != nil || !bytes.Equal(out, golden) {
				t.Errorf("Encode = %v\n%s\nwant\n%s", err, out, golden)
			}
			if _, ok := decodeFast(golden); !ok {
				t.Error("the fast path does not read it")
			}
			rec := `{"seq":9,"recorded_at":"2026-11-01T10:00:01Z","event":` + string(golden) + `}`
			if r, err := DecodeRecord([]byte(rec)); err != nil || !maps.Equal(r.Event.Template.Params, tc.params) {
				t.Errorf("DecodeRecord: %v", err)
			}
		})
	}
}

// TestTemplateParamsRefused: params are bounded like the other fields of
// input: a count, a name as an identifier, a value's size and UTF-8; and a
// template.delete takes none.
func TestTemplateParamsRefused(t *testing.T) {
	put := func(params string) string {
		return `{"v":1,"event_id":"e","source":"api","kind":"template.put","observed_at":"2026-01-01T00:00:00Z","template":{"name":"t","body":"metadata: {}","params":{` + params + `}}}`
	}
	many := make([]string, MaxTemplateParams+1)
	for i := range many {
		many[i] = `"p` + strconv.Itoa(i) + `":"v"`
	}
	for _, tc := range []struct{ name, in string }{
		{"on a delete", `{"v":1,"event_id":"e","source":"api","kind":"template.delete","observed_at":"2026-01-01T00:00:00Z","template":{"name":"t","params":{"a":"b"}}}`},
		{"empty name", put(`"":"v"`)},
		{"name with a control character", put(`"a\u0001":"v"`)},
		{"name too long", put(`"` + strings.Repeat("n", MaxIDLen+1) + `":"v"`)},
		{"value too long", put(`"a":"` + strings.Repeat("v", MaxParamValueLen+1) + `"`)},
		{"too many", put(strings.Join(many, ","))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "template.params" || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode: %v; want an invalid template.params", err)
			}
		})
	}
	// At the limits, it is read.
	at := make([]string, MaxTemplateParams)
	copy(at, many)
	at[0] = `"` + strings.Repeat("n", MaxIDLen) + `":"` + strings.Repeat("é", MaxParamValueLen/2) + `"`
	if _, err := Decode([]byte(put(strings.Join(at, ",")))); err != nil {
		t.Errorf("params at the limits: %v", err)
	}
	if _, err := Decode([]byte(put(`"a":""`))); err != nil {
		t.Errorf("an empty value: %v", err)
	}
}
