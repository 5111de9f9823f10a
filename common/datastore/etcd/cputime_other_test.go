//go:build !unix

package etcd_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
