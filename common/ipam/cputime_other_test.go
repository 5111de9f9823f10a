//go:build !unix

package ipam

import "time"

// processCPU is not measured off Unix.
func processCPU() time.Duration { return 0 }
