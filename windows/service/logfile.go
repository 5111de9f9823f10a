package service

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Log rotation defaults: 10 MiB per file and five old files, about what nssm's rotation gave Calico for
// Windows, and small enough to open in Notepad.
const (
	DefaultLogMaxBytes = 10 << 20
	DefaultLogBackups  = 5
)

// RotatingFile is an io.Writer that appends to a log file and, when a write would take it past MaxBytes,
// renames it to <name>.1 (shifting .1 to .2 and so on, dropping the oldest beyond Backups) and starts a
// new one. Rotation is synchronous and whole lines stay in one file because the logger writes a record
// per Write call. Files are closed before they are renamed, as Windows requires. Safe for concurrent use.
type RotatingFile struct {
	path     string
	maxBytes int64
	backups  int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// OpenRotatingFile opens (creating the directory and file when missing) the log file at path. maxBytes
// <= 0 and backups < 0 mean the defaults; backups 0 keeps no old files.
func OpenRotatingFile(path string, maxBytes int64, backups int) (*RotatingFile, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultLogMaxBytes
	}
	if backups < 0 {
		backups = DefaultLogBackups
	}
	r := &RotatingFile{path: path, maxBytes: maxBytes, backups: backups}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory %s: %w", filepath.Dir(path), err)
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log file %s: %w", r.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close() //nolint:errcheck,gosec // already failing
		return fmt.Errorf("opening log file %s: %w", r.path, err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would not fit. A record larger than MaxBytes goes alone into a
// fresh file rather than being split.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("log file %s: %w", r.path, fs.ErrClosed)
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing log file %s: %w", r.path, err)
	}
	return n, nil
}

func (r *RotatingFile) backup(i int) string { return r.path + "." + strconv.Itoa(i) }

func (r *RotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("closing log file %s for rotation: %w", r.path, err)
	}
	r.f = nil
	if r.backups == 0 {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating log file %s: %w", r.path, err)
		}
		return r.open()
	}
	if err := os.Remove(r.backup(r.backups)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotating log file %s: %w", r.path, err)
	}
	for i := r.backups - 1; i >= 1; i-- {
		if err := os.Rename(r.backup(i), r.backup(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating log file %s: %w", r.path, err)
		}
	}
	if err := os.Rename(r.path, r.backup(1)); err != nil {
		return fmt.Errorf("rotating log file %s: %w", r.path, err)
	}
	return r.open()
}

// Close closes the current file. Later writes fail.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// EventLogger is the part of kardianos' service.Logger the Event Log handler uses. On Windows it is the
// Event Log source named after the service; the fake SCM records the messages.
type EventLogger interface {
	Error(v ...any) error
}

// eventLogWriter hands each record (one Write per record, as slog's handlers write) to the Event Log.
type eventLogWriter struct{ el EventLogger }

func (w eventLogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	if err := w.el.Error(msg); err != nil {
		return 0, err
	}
	return len(p), nil
}

// NewLogger returns the service's logger: every record at level and above to w (the log file, and
// stderr interactively) as text, and the errors also to the Event Log (el nil: not), where an operator
// looks first when a service stops.
func NewLogger(w io.Writer, el EventLogger, level slog.Leveler) *slog.Logger {
	textH := slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})
	if el == nil {
		return slog.New(textH)
	}
	return slog.New(slog.NewMultiHandler(textH, eventLogHandler(el)))
}

func eventLogHandler(el EventLogger) slog.Handler {
	return slog.NewTextHandler(eventLogWriter{el}, &slog.HandlerOptions{
		Level: slog.LevelError,
		// The Event Log stamps its own time.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
}
