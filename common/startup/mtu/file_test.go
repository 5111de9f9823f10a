package mtu

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestMTUFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "var", "lib", "calico", "mtu") // directories are created

	if _, err := ReadMTUFile(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadMTUFile(missing) = %v, want ErrNotExist", err)
	}
	for _, mtu := range []int{1450, 8951, 1440} {
		if err := WriteMTUFile(path, mtu); err != nil {
			t.Fatalf("WriteMTUFile(%d): %v", mtu, err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(raw)); string(raw) != want {
			t.Errorf("file content %q has whitespace; Calico writes the bare number", raw)
		}
		got, err := ReadMTUFile(path)
		if err != nil || got != mtu {
			t.Errorf("ReadMTUFile = %d, %v; want %d", got, err, mtu)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "mtu" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the MTU file (temporary files left behind?)", names)
	}
	// Windows has no Unix permission bits (os.Stat reports 0666 for any writable file).
	if fi, err := os.Stat(path); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644) {
		t.Errorf("mode = %v, %v; want 0644", fi.Mode(), err)
	}

	for _, bad := range []int{0, -1, 70000} {
		if err := WriteMTUFile(path, bad); err == nil {
			t.Errorf("WriteMTUFile(%d) succeeded", bad)
		}
	}
	if got, _ := ReadMTUFile(path); got != 1440 {
		t.Errorf("a rejected write changed the file: %d", got)
	}
}

func TestReadMTUFileContent(t *testing.T) {
	for _, tt := range []struct {
		content string
		want    int
		err     bool
	}{
		{"1450", 1450, false},
		{" 1450\n", 1450, false},
		{"", 0, true},
		{"abc", 0, true},
		{"0", 0, true},
		{"-5", 0, true},
	} {
		p := filepath.Join(t.TempDir(), "mtu")
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadMTUFile(p)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ReadMTUFile(%q) = %d, %v; want %d, error %v", tt.content, got, err, tt.want, tt.err)
		}
		if err != nil && !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestWriteMTUFileUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := WriteMTUFile(filepath.Join(f, "mtu"), 1500) // parent is a regular file
	if err == nil || !strings.Contains(err.Error(), filepath.Join(f, "mtu")) {
		t.Errorf("WriteMTUFile under a file = %v, want an error naming the path", err)
	}
}

// TestUpdateMTUFile: the file is written when missing, different or malformed, and left alone (the
// same inode, no temporary file) when it already holds the value.
func TestUpdateMTUFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mtu")
	steps := []struct {
		name    string
		before  string // written raw first ("": leave as is; "-": remove)
		mtu     int
		changed bool
	}{
		{"missing", "-", 1450, true},
		{"same value", "", 1450, false},
		{"same value with a newline (another writer)", "1450\n", 1450, false},
		{"new value", "", 1480, true},
		{"malformed", "garbage", 1480, true},
	}
	for _, st := range steps {
		switch st.before {
		case "":
		case "-":
			_ = os.Remove(path)
		default:
			if err := os.WriteFile(path, []byte(st.before), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := os.Stat(path)
		changed, err := UpdateMTUFile(path, st.mtu)
		if err != nil || changed != st.changed {
			t.Errorf("%s: UpdateMTUFile(%d) = %v, %v; want %v", st.name, st.mtu, changed, err, st.changed)
		}
		if got, err := ReadMTUFile(path); err != nil || got != st.mtu {
			t.Errorf("%s: file holds %d, %v; want %d", st.name, got, err, st.mtu)
		}
		after, _ := os.Stat(path)
		if !st.changed && (before == nil || !os.SameFile(before, after)) {
			t.Errorf("%s: the file was replaced although it held the value", st.name)
		}
	}
	if _, err := UpdateMTUFile(path, 0); err == nil {
		t.Error("UpdateMTUFile(0) succeeded")
	}
}
