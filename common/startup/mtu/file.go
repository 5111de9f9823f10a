package mtu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultFile is where the pod MTU is published for the CNI plugin: Calico's path, so Calico's and
// tortie's CNI plugins both find it (the CNI uses it when its netconf "mtu" is 0). This is the Linux path;
// Windows callers pass their own.
const DefaultFile = "/var/lib/calico/mtu"

// WriteMTUFile writes mtu to path atomically: a temporary file in the same directory is written, synced
// and renamed over path, so a concurrent reader (the CNI plugin during a pod ADD) sees the old or the new
// value, never a partial one. The directory is created if missing. The content is the decimal number
// without a newline, as Calico writes it. Safe to call repeatedly.
func WriteMTUFile(path string, mtu int) error {
	if mtu <= 0 || mtu > 65535 {
		return fmt.Errorf("writing MTU file %s: MTU %d out of range", path, mtu)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.WriteString(strconv.Itoa(mtu)); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("writing MTU file %s: %w", path, err)
	}
	ok = true
	return nil
}

// UpdateMTUFile writes mtu to path with WriteMTUFile unless the file already holds it (as ReadMTUFile
// reads it), and reports whether it wrote. An unreadable or malformed file is rewritten. This is the
// owner's call on every reconciliation: it costs one read when nothing changed.
func UpdateMTUFile(path string, mtu int) (bool, error) {
	if cur, err := ReadMTUFile(path); err == nil && cur == mtu {
		return false, nil
	}
	if err := WriteMTUFile(path, mtu); err != nil {
		return false, err
	}
	return true, nil
}

// ReadMTUFile reads an MTU file written by WriteMTUFile (or by Calico). Surrounding whitespace is ignored. A
// missing file is reported with an error wrapping os.ErrNotExist.
func ReadMTUFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("reading MTU file %s: %w (the node agent writes it at startup; is it running?)", path, err)
		}
		return 0, fmt.Errorf("reading MTU file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(data))
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("reading MTU file %s: %q is not an MTU; delete the file and restart the node agent to rewrite it", path, s)
	}
	return n, nil
}
