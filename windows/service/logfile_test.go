package service

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRotatingFile(t *testing.T) {
	tests := []struct {
		name      string
		backups   int
		lines     int
		wantFiles []string
	}{
		{name: "no rotation yet", backups: 2, lines: 9, wantFiles: []string{"tortie-node.log"}},
		{name: "rotates and keeps two backups", backups: 2, lines: 50, wantFiles: []string{"tortie-node.log", "tortie-node.log.1", "tortie-node.log.2"}},
		{name: "no backups", backups: 0, lines: 50, wantFiles: []string{"tortie-node.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			path := filepath.Join(dir, "tortie-node.log")
			const lineLen, maxBytes = 10, 100 // ten lines per file
			r, err := OpenRotatingFile(path, maxBytes, tt.backups)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.lines {
				if _, err := fmt.Fprintf(r, "line %04d\n", i); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			var got []string
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				got = append(got, e.Name())
			}
			if diff := cmp.Diff(tt.wantFiles, got); diff != "" {
				t.Fatalf("files (-want +got):\n%s", diff)
			}
			// Newest lines in the current file, the ones before in .1, and so on; whole lines only,
			// none lost within the kept files.
			next := tt.lines - 1
			for _, name := range got {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if len(b) > maxBytes || len(b)%lineLen != 0 {
					t.Errorf("%s: %d bytes, want whole lines within %d", name, len(b), maxBytes)
				}
				lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				for i := len(lines) - 1; i >= 0; i-- {
					if want := fmt.Sprintf("line %04d", next); lines[i] != want {
						t.Fatalf("%s line %d = %q, want %q", name, i, lines[i], want)
					}
					next--
				}
			}
			if _, err := r.Write([]byte("x\n")); err == nil {
				t.Error("Write after Close succeeded")
			}
		})
	}
}

func TestRotatingFileAppendsAndOversizedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRotatingFile(path, 1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 2000)
	if _, err := r.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path + ".1"); string(b) != "old\n" {
		t.Errorf("the earlier content should have rotated to .1 intact, got %q", b)
	}
	if b, _ := os.ReadFile(path); len(b) != 2000 {
		t.Errorf("an oversized record should go whole into a fresh file, got %d bytes", len(b))
	}
}

type recordingEventLog struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recordingEventLog) Error(v ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, fmt.Sprint(v...))
	return nil
}

func TestNewLoggerErrorsGoToTheEventLog(t *testing.T) {
	var file bytes.Buffer
	el := &recordingEventLog{}
	log := NewLogger(&file, el, slog.LevelInfo).With("node", "win-1")
	log.Debug("hidden")
	log.Info("started", "version", "v1")
	log.Warn("slow")
	log.Error("startup failed", "error", "datastore unreachable")

	for _, want := range []string{"msg=started", "msg=slow", `msg="startup failed"`} {
		if !strings.Contains(file.String(), want) {
			t.Errorf("log file lacks %q:\n%s", want, file.String())
		}
	}
	if strings.Contains(file.String(), "hidden") {
		t.Error("a debug record reached the file at info level")
	}
	want := []string{`level=ERROR msg="startup failed" node=win-1 error="datastore unreachable"`}
	if diff := cmp.Diff(want, el.msgs); diff != "" {
		t.Errorf("event log (-want +got):\n%s", diff)
	}
}
