package subscription

import (
	"errors"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://hooks.example/x"}`,
		`{"url":"http://a/","format":"alertmanager","filter":{"regex":{"name":"n.*"},"severities":["critical"]},"headers":{"X-A":"b"},"secret_ref":"s","delivery":{"max_age":"24h","backlog_policy":"alert"}}`,
		`{"url":"http://a/","delivery":{"timeout":"x"}}`,
		`{`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// A decoded spec re-encodes, decodes to the same value, and compiles.
		enc, err := Encode(s)
		if err != nil {
			t.Fatalf("Encode of a decoded spec: %v", err)
		}
		if _, err := Decode(enc); err != nil {
			t.Fatalf("Decode of an encoded spec: %v\n%s", err, enc)
		}
		sub, err := Compile("id", 1, b)
		if err != nil {
			t.Fatalf("Compile of a decoded spec: %v", err)
		}
		sub.Matches(Alarm{Name: "x", Properties: map[string]string{"k": "v"}})
	})
}
