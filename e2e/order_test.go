//go:build e2e

package e2e

import "testing"

// The notification check itself must be able to fail.
func TestE2EOrderCheck(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		want, got                  []string
		lost, unexpected, outOrder int
	}{
		{"all in order", []string{"a", "b", "c"}, []string{"a", "b", "c"}, 0, 0, 0},
		{"nothing expected", nil, nil, 0, 0, 0},
		{"one lost", []string{"a", "b", "c"}, []string{"a", "c"}, 1, 0, 0},
		{"one unexpected", []string{"a"}, []string{"a", "x"}, 0, 1, 0},
		{"swapped", []string{"a", "b", "c"}, []string{"b", "a", "c"}, 0, 0, 1},
		{"last first", []string{"a", "b", "c"}, []string{"c", "a", "b"}, 0, 0, 1},
		{"reversed", []string{"a", "b", "c"}, []string{"c", "b", "a"}, 0, 0, 2},
		{"none delivered", []string{"a", "b"}, nil, 2, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, u, o := orderCheck(tc.want, tc.got)
			if l != tc.lost || u != tc.unexpected || o != tc.outOrder {
				t.Errorf("orderCheck = lost %d, unexpected %d, out of order %d; want %d, %d, %d", l, u, o, tc.lost, tc.unexpected, tc.outOrder)
			}
		})
	}
}
