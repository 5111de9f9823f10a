//go:build linux

package netlinkx

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

func TestDump(t *testing.T) {
	errOther := errors.New("permission denied")
	tests := []struct {
		name       string
		errs       []error // returned by successive calls; nil after the list ends
		wantCalls  int
		wantResult []int
		wantErr    error
	}{
		{name: "first try", wantCalls: 1, wantResult: []int{1}},
		{name: "interrupted once", errs: []error{netlink.ErrDumpInterrupted}, wantCalls: 2, wantResult: []int{2}},
		{
			name:       "interrupted until the last attempt",
			errs:       repeat(netlink.ErrDumpInterrupted, MaxDumpAttempts-1),
			wantCalls:  MaxDumpAttempts,
			wantResult: []int{MaxDumpAttempts},
		},
		{
			name:      "always interrupted",
			errs:      repeat(netlink.ErrDumpInterrupted, MaxDumpAttempts+3),
			wantCalls: MaxDumpAttempts,
			wantErr:   netlink.ErrDumpInterrupted,
		},
		{
			name:      "wrapped interruption is recognised",
			errs:      repeat(fmt.Errorf("listing: %w", netlink.ErrDumpInterrupted), MaxDumpAttempts),
			wantCalls: MaxDumpAttempts,
			wantErr:   netlink.ErrDumpInterrupted,
		},
		{name: "other error is not retried", errs: []error{errOther}, wantCalls: 1, wantResult: []int{1}, wantErr: errOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got, err := Dump(func() ([]int, error) {
				calls++
				var err error
				if calls <= len(tt.errs) {
					err = tt.errs[calls-1]
				}
				return []int{calls}, err // a "partial" result accompanies every error
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Dump() error = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("f called %d times, want %d", calls, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantResult, got); diff != "" {
				t.Errorf("Dump() result (-want +got):\n%s", diff)
			}
		})
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}
