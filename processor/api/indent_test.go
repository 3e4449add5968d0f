package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// indentedByEncoder is what the API wrote before WriteJSON.
func indentedByEncoder(t testing.TB, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// nested is v in n arrays.
func nested(n int, v any) any {
	for range n {
		v = []any{v, map[string]any{}}
	}
	return v
}

// TestWriteJSONIsTheEncodersIndent: to MaxIndentDepth levels, WriteJSON
// writes what json.Encoder with SetIndent("", "  ") writes, byte for byte;
// past them, the same JSON, indented no further.
func TestWriteJSONIsTheEncodersIndent(t *testing.T) {
	var tree TopologyResponse
	if err := ComputeTopology(cloud(), TopologyQuery{GraphType: "tree", Category: "all"}, &tree); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"tree":    tree,
		"error":   ErrorResponse{Meta: Meta{Seq: 3, Leader: "p1"}, Error: `a "quoted" {[,:]} \ back\slash, <html> & ünïcode ✓ tab	end`},
		"empties": map[string]any{"a": []int{}, "b": map[string]int{}, "c": nil, "d": "", "e": [][]int{{}, {}}},
		"scalars": []any{1, 2.5, true, false, nil, "x"},
		"raw":     map[string]json.RawMessage{"spec": json.RawMessage(`{ "url" : "http://a/" , "x":[ 1, 2 ] }`)},
		"deepest": nested(MaxIndentDepth, "leaf"),
	} {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteJSON(&got, v); err != nil {
				t.Fatal(err)
			}
			if want := indentedByEncoder(t, v); !bytes.Equal(got.Bytes(), want) {
				t.Errorf("WriteJSON:\n%s\nthe encoder:\n%s", got.Bytes(), want)
			}
		})
	}
	// Deeper: the same JSON, no line indented past the bound.
	v := nested(3*MaxIndentDepth, "leaf")
	var got bytes.Buffer
	if err := WriteJSON(&got, v); err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	_ = json.Compact(&a, got.Bytes())
	_ = json.Compact(&b, indentedByEncoder(t, v))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("past the bound, WriteJSON writes other JSON than the encoder:\n%s", got.Bytes())
	}
	for line := range strings.SplitSeq(got.String(), "\n") {
		if ind := len(line) - len(strings.TrimLeft(line, " ")); ind > 2*MaxIndentDepth {
			t.Fatalf("a line indented %d spaces, past the bound of %d: %q", ind, 2*MaxIndentDepth, line)
		}
	}
}

// FuzzWriteJSON: for any JSON value, WriteJSON writes the same JSON as the
// encoder, byte for byte when it nests no deeper than MaxIndentDepth.
func FuzzWriteJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"c\"]}"}],"d":{}}`, `[[],[[]],{"":""}]`, `"\u2028<&>"`, `{"x":"\\"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		var got bytes.Buffer
		if err := WriteJSON(&got, v); err != nil {
			t.Fatal(err)
		}
		// Written a byte at a time, the same.
		compact, _ := json.Marshal(v)
		var bytewise bytes.Buffer
		in := &indenter{w: &bytewise}
		for _, c := range append(compact, '\n') {
			_, _ = in.Write([]byte{c})
		}
		if err := in.flush(); err != nil || !bytes.Equal(bytewise.Bytes(), got.Bytes()) {
			t.Fatalf("written a byte at a time %q (%v), at once %q", bytewise.Bytes(), err, got.Bytes())
		}
		want := indentedByEncoder(t, v)
		if bytes.Equal(got.Bytes(), want) {
			return
		}
		var a, b bytes.Buffer
		if json.Compact(&a, got.Bytes()) != nil {
			t.Fatalf("WriteJSON wrote no JSON: %q", got.Bytes())
		}
		_ = json.Compact(&b, want)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatalf("WriteJSON %q, the encoder %q", got.Bytes(), want)
		}
		if !strings.Contains(string(want), "\n"+strings.Repeat("  ", MaxIndentDepth+1)) {
			t.Fatalf("no line nested past the bound, yet WriteJSON %q, the encoder %q", got.Bytes(), want)
		}
	})
}
