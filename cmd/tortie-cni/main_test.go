package main

import "testing"

func TestIsIPAM(t *testing.T) {
	for name, want := range map[string]bool{
		"tortie": false, "/opt/cni/bin/tortie": false, "calico": false, "tortie-cni": false, `C:\cni\tortie.exe`: false,
		"tortie-ipam": true, "/opt/cni/bin/calico-ipam": true, "tortie-ipam.exe": true,
	} {
		if got := isIPAM(name); got != want {
			t.Errorf("isIPAM(%q) = %v, want %v", name, got, want)
		}
	}
}
