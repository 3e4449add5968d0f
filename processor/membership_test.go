package processor

import (
	"errors"
	"fmt"
	"testing"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/election"
)

// TestMembershipErrors: each refusal of a membership change reaches the
// API as what it is — the operator's to fix (409, 422, 404) — not as a
// server error.
func TestMembershipErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{election.ErrNotLeader, api.ErrNotLeader},
		{election.ErrNoQuorum, api.ErrRefused},
		{election.ErrOtherServer, api.ErrRefused},
		{election.ErrUnknownServer, api.ErrNotFound},
	} {
		got := membershipErr(fmt.Errorf("join n1 at h:1: %w", tc.err))
		if !errors.Is(got, tc.want) || !errors.Is(got, tc.err) {
			t.Errorf("membershipErr(%v) = %v; want it to wrap %v", tc.err, got, tc.want)
		}
	}
}
