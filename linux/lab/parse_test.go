//go:build linux

package lab

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Port
		wantErr string
	}{
		{in: "serve-80-tcp=80/TCP", want: Port{Name: "serve-80-tcp", Port: 80, Protocol: "TCP"}},
		{in: "dns=53/udp", want: Port{Name: "dns", Port: 53, Protocol: "UDP"}},
		{in: "web=65535/TCP", want: Port{Name: "web", Port: 65535, Protocol: "TCP"}},
		{in: "web80/TCP", wantErr: "want NAME=PORT/PROTO"},
		{in: "web=80", wantErr: "want NAME=PORT/PROTO"},
		{in: "=80/TCP", wantErr: "want NAME=PORT/PROTO"},
		{in: "web=0/TCP", wantErr: "not a number from 1 to 65535"},
		{in: "web=65536/TCP", wantErr: "not a number from 1 to 65535"},
		{in: "web=80/SCTP", wantErr: "TCP or UDP"},
		{in: "Web=80/TCP", wantErr: "lower-case"},
		{in: "a-very-long-port-name=80/TCP", wantErr: "longer than 15"},
		{in: "80=80/TCP", wantErr: "needs a letter"},
		{in: "a--b=80/TCP", wantErr: "double"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePort(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePort(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if back, err := ParsePort(got.String()); err != nil || back != got {
				t.Errorf("String() %q does not parse back: %v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels("--label", []string{"app=web", "example.com/tier=front", "empty="})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"app": "web", "example.com/tier": "front", "empty": ""}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"app"}, {"bad key=1"}, {"app=bad value"}, {"app=1", "app=2"}, {"=x"}} {
		if _, err := ParseLabels("--label", bad); err == nil {
			t.Errorf("ParseLabels(%q) accepted", bad)
		}
	}
}

func TestParsePodID(t *testing.T) {
	if ns, name, err := ParsePodID("x/a-1"); err != nil || ns != "x" || name != "a-1" {
		t.Errorf("ParsePodID(x/a-1) = %q %q %v", ns, name, err)
	}
	for _, bad := range []string{"x", "x/", "/a", "X/a", "x/A", "x/a/b", "x/a_b"} {
		if _, _, err := ParsePodID(bad); err == nil {
			t.Errorf("ParsePodID(%q) accepted", bad)
		}
	}
}

func TestMatrixOutput(t *testing.T) {
	m := &Matrix{Pods: []string{"x/a", "y/bb"}, Results: map[string][]string{
		"UDP/80": {".X", "X."}, "web": {"-.", "-."}, "TCP/8080": {"..", ".."}, "TCP/80": {".X", ".."},
	}}
	if diff := cmp.Diff([]string{"TCP/80", "TCP/8080", "UDP/80", "web"}, m.Keys()); diff != "" {
		t.Errorf("Keys (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	if err := m.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	want := `{"pods":["x/a","y/bb"],"results":{"TCP/80":[".X",".."],"TCP/8080":["..",".."],"UDP/80":[".X","X."],"web":["-.","-."]}}` + "\n"
	if b.String() != want {
		t.Errorf("WriteJSON:\n got %s\nwant %s", b.String(), want)
	}
	var back Matrix
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || !cmp.Equal(*m, back) {
		t.Errorf("the JSON does not decode back: %v\n%s", err, cmp.Diff(*m, back))
	}
	wantText := "TCP/80 (rows from, columns to: x/a y/bb)\nx/a  .X\ny/bb ..\n"
	if got := m.Text(); !strings.HasPrefix(got, wantText) {
		t.Errorf("Text:\n%s\nwant it to start with:\n%s", got, wantText)
	}
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"serve-80-tcp=80/TCP", "a=1/udp", "=/", "x=99999/TCP"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if p.Port == 0 || (p.Protocol != "TCP" && p.Protocol != "UDP") || validPortName(p.Name) != "" {
			t.Fatalf("ParsePort(%q) accepted %+v", s, p)
		}
		if back, err := ParsePort(p.String()); err != nil || back != p {
			t.Fatalf("ParsePort(%q).String() = %q does not parse back: %v", s, p.String(), err)
		}
	})
}

func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{"a=b", "example.com/x=y", "=", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseLabels("--label", []string{s})
		if err != nil {
			return
		}
		if len(m) != 1 {
			t.Fatalf("ParseLabels(%q) = %v", s, m)
		}
	})
}
