package graph

import "testing"

func TestVertexKey(t *testing.T) {
	for _, tc := range []struct {
		typ, id, want string
	}{
		{"nova.host", "h1", "RESOURCE/nova.host/h1"},
		{"nova.host", "a/b", "RESOURCE/nova.host/a/b"},
		{"k8s/pod", "x", "RESOURCE/k8s%2Fpod/x"},
		{"k8s", "pod/x", "RESOURCE/k8s/pod/x"},
		{"50%", "x", "RESOURCE/50%25/x"},
		{"a%2Fb", "x", "RESOURCE/a%252Fb/x"},
	} {
		v := Vertex{Category: "RESOURCE", Type: tc.typ, ExternalID: tc.id}
		if got := v.Key(); got != tc.want {
			t.Errorf("Key(%q, %q) = %q; want %q", tc.typ, tc.id, got, tc.want)
		}
	}
	// Every split of one string into a type and an id gives its own key.
	seen := map[string]string{}
	const s = "a/b%2F/c"
	for i := 1; i < len(s); i++ {
		v := Vertex{Category: "ALARM", Type: s[:i], ExternalID: s[i:]}
		if prev, dup := seen[v.Key()]; dup {
			t.Errorf("type %q and type %q share key %q", prev, v.Type, v.Key())
		}
		seen[v.Key()] = v.Type
	}
}
