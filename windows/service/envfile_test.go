package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		keys    []string
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{
			name: "settings, comments, blank lines, CRLF, BOM and quotes",
			in:   "\ufeff# comment\r\nDATASTORE_TYPE=kubernetes\r\n\r\n  KUBECONFIG = \"C:\\Program Files\\tortie\\kubeconfig\" \r\nEMPTY=\r\nHASH=a#b\r\n",
			want: map[string]string{"DATASTORE_TYPE": "kubernetes", "KUBECONFIG": `C:\Program Files\tortie\kubeconfig`, "EMPTY": "", "HASH": "a#b"},
			keys: []string{"DATASTORE_TYPE", "KUBECONFIG", "EMPTY", "HASH"},
		},
		{name: "no equals sign", in: "A=1\nDATASTORE_TYPE kubernetes\n", wantErr: `env:2: "DATASTORE_TYPE kubernetes" is not a setting: write KEY=VALUE`},
		{name: "bad key", in: "1A=1\n", wantErr: `env:1: "1A=1" is not a setting`},
		{name: "duplicate", in: "A=1\n# x\nA=2\n", wantErr: "env:3: A is set twice; keep one line for it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ef, err := ParseEnvFile("env", []byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEnvFile error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range ef.Keys() {
				got[k], _ = ef.Get(k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if tt.keys != nil {
				if diff := cmp.Diff(tt.keys, ef.Keys()); diff != "" {
					t.Errorf("key order (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestEnvFileRoundTrip(t *testing.T) {
	ef, err := ParseEnvFile("in", nil)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"A": "plain", "B": " leading space", "C": "has # hash", "D": `"quoted"`, "E": `C:\x y\z`}
	for _, k := range []string{"A", "B", "C", "D", "E"} {
		ef.Set(k, vals[k])
	}
	back, err := ParseEnvFile("out", ef.Bytes())
	if err != nil {
		t.Fatalf("parsing what Bytes wrote: %v\n%s", err, ef.Bytes())
	}
	for k, want := range vals {
		if got, _ := back.Get(k); got != want {
			t.Errorf("%s = %q after a round trip, want %q", k, got, want)
		}
	}
	if !strings.Contains(string(ef.Bytes()), "A=plain\r\n") {
		t.Errorf("lines should end in CRLF:\n%q", ef.Bytes())
	}
}

func TestEnvFileGetenv(t *testing.T) {
	ef, err := ParseEnvFile("env", []byte("KUBECONFIG=C:\\k\\config\nEMPTY=\n"))
	if err != nil {
		t.Fatal(err)
	}
	proc := map[string]string{"KUBECONFIG": `C:\Users\admin\.kube\config`, "NODENAME": "win-1", "EMPTY": "from-process"}
	get := ef.Getenv(func(k string) string { return proc[k] })
	for k, want := range map[string]string{"KUBECONFIG": `C:\k\config`, "NODENAME": "win-1", "EMPTY": "", "UNSET": ""} {
		if got := get(k); got != want {
			t.Errorf("getenv(%s) = %q, want %q (the file wins over the process environment)", k, got, want)
		}
	}
	if got := ef.Getenv(nil)("NODENAME"); got != "" {
		t.Errorf("nil fallback: got %q", got)
	}
}

func TestParseEnvChanges(t *testing.T) {
	got, err := ParseEnvChanges("--env", []string{"DATASTORE_TYPE=kubernetes", "NODENAME=", " KUBECONFIG = C:\\a b", "-FELIX_LOGSEVERITYSCREEN"})
	if err != nil {
		t.Fatal(err)
	}
	want := []EnvChange{
		{Key: "DATASTORE_TYPE", Value: "kubernetes"},
		{Key: "NODENAME"},
		{Key: "KUBECONFIG", Value: `C:\a b`},
		{Key: "FELIX_LOGSEVERITYSCREEN", Remove: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"NOVALUE", "=x", "-", "-1X", "A-B=1"} {
		if _, err := ParseEnvChanges("--env", []string{"A=1", bad}); err == nil || !strings.Contains(err.Error(), "--env") {
			t.Errorf("ParseEnvChanges(%q) error = %v, want one naming --env", bad, err)
		}
	}
}

func TestUpdateEnvFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tortie", "tortie-node.env")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// Nothing to write and no file: no empty file appears.
	changed, err := UpdateEnvFile(path, []EnvChange{{Key: "NODENAME"}})
	if err != nil || changed {
		t.Fatalf("UpdateEnvFile(empty) = %v, %v; want false, nil", changed, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("an empty update created %s (stat: %v)", path, err)
	}

	changed, err = UpdateEnvFile(path, []EnvChange{{Key: "DATASTORE_TYPE", Value: "kubernetes"}, {Key: "KUBECONFIG", Value: `C:\k\config`}})
	if err != nil || !changed {
		t.Fatalf("first update = %v, %v", changed, err)
	}
	// An operator's own line survives; an empty MSI property keeps the value; -KEY removes.
	if err := os.WriteFile(path, []byte(read()+"FELIX_LOGSEVERITYSCREEN=Debug\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err = UpdateEnvFile(path, []EnvChange{{Key: "DATASTORE_TYPE", Value: "etcdv3"}, {Key: "KUBECONFIG"}, {Key: "NODENAME", Value: "win-1"}, {Key: "FELIX_LOGSEVERITYSCREEN", Remove: true}})
	if err != nil || !changed {
		t.Fatalf("second update = %v, %v", changed, err)
	}
	ef, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, k := range ef.Keys() {
		got[k], _ = ef.Get(k)
	}
	want := map[string]string{"DATASTORE_TYPE": "etcdv3", "KUBECONFIG": `C:\k\config`, "NODENAME": "win-1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after update (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"DATASTORE_TYPE", "KUBECONFIG", "NODENAME"}, ef.Keys()); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}

	// The same update again leaves the file alone.
	before, _ := os.Stat(path)
	changed, err = UpdateEnvFile(path, []EnvChange{{Key: "NODENAME", Value: "win-1"}})
	if err != nil || changed {
		t.Fatalf("repeat update = %v, %v; want false, nil", changed, err)
	}
	after, _ := os.Stat(path)
	if !before.ModTime().Equal(after.ModTime()) {
		t.Error("an unchanged file was rewritten")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	// A broken file is reported by name and line and not overwritten.
	if err := os.WriteFile(path, []byte("GOOD=1\nbroken line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = UpdateEnvFile(path, []EnvChange{{Key: "A", Value: "1"}})
	if err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("update of a broken file: %v, want an error naming %s:2", err, path)
	}
	if read() != "GOOD=1\nbroken line\n" {
		t.Error("a broken file was overwritten")
	}
}
