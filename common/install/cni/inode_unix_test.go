//go:build !windows

package cni

import (
	"os"
	"syscall"
	"testing"
)

// inode identifies the file at p, to tell a rename from an in-place write.
func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("%s: no inode number", p)
	}
	return st.Ino
}
