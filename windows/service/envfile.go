package service

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// EnvFile is the parsed content of the service's environment file: KEY=VALUE lines, blank lines and
// lines starting with # ignored, a value optionally wrapped in double quotes (which are removed; there are
// no escapes, so Windows paths need none). Keys keep the order of the file.
type EnvFile struct {
	keys   []string
	values map[string]string
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidKey reports whether k can name an environment variable in the file.
func ValidKey(k string) bool { return envKeyRE.MatchString(k) }

// ParseEnvFile parses data; name is used in errors ("<name>:<line>: ...").
func ParseEnvFile(name string, data []byte) (*EnvFile, error) {
	ef := &EnvFile{values: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff")) // Notepad may add a BOM
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !ValidKey(k) {
			return nil, fmt.Errorf("%s:%d: %q is not a setting: write KEY=VALUE (KEY letters, digits and _)", name, n, line)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if _, dup := ef.values[k]; dup {
			return nil, fmt.Errorf("%s:%d: %s is set twice; keep one line for it", name, n, k)
		}
		ef.keys = append(ef.keys, k)
		ef.values[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return ef, nil
}

// ReadEnvFile reads and parses path. A missing file is an empty EnvFile, not an error: the service runs
// on its process environment alone until one is written.
func ReadEnvFile(path string) (*EnvFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &EnvFile{values: map[string]string{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading environment file %s: %w", path, err)
	}
	return ParseEnvFile(path, data)
}

// Get returns the value of k and whether the file sets it.
func (ef *EnvFile) Get(k string) (string, bool) {
	v, ok := ef.values[k]
	return v, ok
}

// Keys returns the keys in file order.
func (ef *EnvFile) Keys() []string { return slices.Clone(ef.keys) }

// Set sets k to v, keeping k's place when it is already there and appending it otherwise.
func (ef *EnvFile) Set(k, v string) {
	if _, ok := ef.values[k]; !ok {
		ef.keys = append(ef.keys, k)
	}
	ef.values[k] = v
}

// Unset removes k.
func (ef *EnvFile) Unset(k string) {
	if _, ok := ef.values[k]; !ok {
		return
	}
	delete(ef.values, k)
	ef.keys = slices.DeleteFunc(ef.keys, func(s string) bool { return s == k })
}

// Getenv returns a lookup that answers from the file first and from fallback (nil: nothing) for the keys
// the file does not set.
func (ef *EnvFile) Getenv(fallback func(string) string) func(string) string {
	return func(k string) string {
		if v, ok := ef.values[k]; ok {
			return v
		}
		if fallback == nil {
			return ""
		}
		return fallback(k)
	}
}

const envFileHeader = `# tortie-node Windows service settings: one KEY=VALUE per line (Calico's or TORTIE_ names).
# Written by the MSI and by 'tortie-node service install|configure --env KEY=VALUE'; edit it and restart
# the service (Restart-Service tortie-node) to apply. These settings win over the machine's environment.
`

// Bytes renders the file: the header, then one KEY=VALUE line per key in order, with CRLF line ends so
// Notepad shows it properly. Values containing leading or trailing spaces or a # are quoted.
func (ef *EnvFile) Bytes() []byte {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(envFileHeader, "\n", "\r\n"))
	for _, k := range ef.keys {
		v := ef.values[k]
		if v != strings.TrimSpace(v) || strings.Contains(v, "#") || (strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`)) {
			v = `"` + v + `"`
		}
		b.WriteString(k + "=" + v + "\r\n")
	}
	return []byte(b.String())
}

// EnvChange is one edit asked for on the command line or by the MSI: KEY=VALUE sets, KEY= (empty value)
// leaves the key as it is (so an MSI property left empty never erases a setting on upgrade), and -KEY
// removes it.
type EnvChange struct {
	Key, Value string
	Remove     bool
}

// ParseEnvChanges parses "KEY=VALUE" and "-KEY" arguments; flag names the option in errors. Every
// argument is checked before any is used, so a typo changes nothing.
func ParseEnvChanges(flag string, args []string) ([]EnvChange, error) {
	var out []EnvChange
	for _, a := range args {
		if k, ok := strings.CutPrefix(a, "-"); ok {
			if !ValidKey(k) {
				return nil, fmt.Errorf("%s %q: %q is not a variable name (letters, digits and _)", flag, a, k)
			}
			out = append(out, EnvChange{Key: k, Remove: true})
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || !ValidKey(strings.TrimSpace(k)) {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE to set a variable or -KEY to remove one", flag, a)
		}
		out = append(out, EnvChange{Key: strings.TrimSpace(k), Value: strings.TrimSpace(v)})
	}
	return out, nil
}

// UpdateEnvFile applies changes to the file at path (creating it and its directory when missing) and
// writes it atomically: a temporary file in the same directory renamed over the old one. It reports
// whether the content changed; an unchanged file is not rewritten.
func UpdateEnvFile(path string, changes []EnvChange) (changed bool, err error) {
	ef, err := ReadEnvFile(path)
	if err != nil {
		return false, err
	}
	old, _ := os.ReadFile(path) //nolint:errcheck // a missing file reads as empty, which is what we compare with
	for _, c := range changes {
		switch {
		case c.Remove:
			ef.Unset(c.Key)
		case c.Value != "":
			ef.Set(c.Key, c.Value)
		}
	}
	data := ef.Bytes()
	if old != nil && bytes.Equal(old, data) {
		return false, nil
	}
	if len(ef.keys) == 0 && old == nil {
		// Nothing to say and nothing there: do not create an empty file.
		return false, nil
	}
	if err := writeFileAtomic(path, data); err != nil {
		return false, fmt.Errorf("writing environment file %s: %w", path, err)
	}
	return true, nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) //nolint:errcheck // gone after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close() //nolint:errcheck,gosec // already failing
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close() //nolint:errcheck,gosec // already failing
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The file may hold a kubeconfig path or etcd credentials' paths: readable by its owner, as the
	// ProgramData ACLs allow on Windows.
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// SortedKeys returns keys sorted, for stable messages.
func SortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
