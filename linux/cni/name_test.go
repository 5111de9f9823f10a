//go:build linux

package cni

import "testing"

func TestHostVethName(t *testing.T) {
	// Expected values are computed independently: echo -n default.nginx | sha1sum
	// = c440f455693b69cdd48a37aa5ecd78038f50413d.
	tests := []struct {
		name, prefix, namespace, pod, want string
	}{
		{name: "default prefix", namespace: "default", pod: "nginx", want: "calic440f455693"},
		{name: "explicit cali", prefix: "cali", namespace: "default", pod: "nginx", want: "calic440f455693"},
		{name: "other pod", prefix: "cali", namespace: "kube-system", pod: "coredns-abc", want: "cali3d5d6ab04b5"},
		{name: "short prefix keeps 11 hex", prefix: "tt", namespace: "default", pod: "nginx", want: "ttc440f455693"},
		{name: "long prefix trims hash", prefix: "tortie", namespace: "default", pod: "nginx", want: "tortiec440f4556"},
		{name: "15-char prefix leaves no hash", prefix: "abcdefghijklmnopq", namespace: "default", pod: "nginx", want: "abcdefghijklmno"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HostVethName(tt.prefix, tt.namespace, tt.pod)
			if got != tt.want {
				t.Errorf("HostVethName(%q, %q, %q) = %q, want %q", tt.prefix, tt.namespace, tt.pod, got, tt.want)
			}
			if len(got) > maxIfNameLen {
				t.Errorf("HostVethName(...) = %q is %d characters, kernel limit is %d", got, len(got), maxIfNameLen)
			}
		})
	}
}
