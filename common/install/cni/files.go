package cni

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// tmpPrefix starts the temporary files written next to a target; a crash may leave one behind, and
// the next write in that directory removes it.
const tmpPrefix = ".tortie-install-"

// writeFile makes path hold data with mode perm. It writes nothing and returns false when path already
// holds exactly that; otherwise it writes a temporary file in the same directory, syncs it and renames
// it over path, so a reader sees the old file or the new one, never a part.
func writeFile(path string, data []byte, perm fs.FileMode) (bool, error) {
	if same, err := sameContent(path, perm, func() ([]byte, error) { return data, nil }); err != nil {
		return false, err
	} else if same {
		return false, nil
	}
	return true, replace(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// copyFile makes dst a copy of src with mode perm, writing only when the content or mode differ.
func copyFile(src, dst string, perm fs.FileMode) (bool, error) {
	same, err := sameFile(src, dst, perm)
	if err != nil {
		return false, err
	}
	if same {
		return false, nil
	}
	return true, replace(dst, perm, func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close() //nolint:errcheck // read-only
		_, err = io.Copy(w, f)
		return err
	})
}

// replace writes a temporary file in path's directory with fill, syncs it, gives it perm and renames
// it over path.
func replace(path string, perm fs.FileMode, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, tmpPrefix+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return fail(err)
	}
	// CreateTemp makes the file 0600; chmod before the rename so the target never has the wrong mode.
	if err := tmp.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		_ = os.Remove(name)
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// sameContent reports whether path exists with mode perm (permission bits; ignored on Windows) and the
// content want returns.
func sameContent(path string, perm fs.FileMode, want func() ([]byte, error)) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || !modeOK(fi, perm) {
		return false, nil
	}
	have, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	w, err := want()
	if err != nil {
		return false, err
	}
	return bytes.Equal(have, w), nil
}

// sameFile reports whether dst is a regular file with mode perm and the same content as src.
func sameFile(src, dst string, perm fs.FileMode) (bool, error) {
	sfi, err := os.Stat(src)
	if err != nil {
		return false, fmt.Errorf("reading the plugin binary %s: %w", src, err)
	}
	dfi, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", dst, err)
	}
	if !dfi.Mode().IsRegular() || dfi.Size() != sfi.Size() || !modeOK(dfi, perm) {
		return false, nil
	}
	hs, err := hashFile(src)
	if err != nil {
		return false, err
	}
	hd, err := hashFile(dst)
	if err != nil {
		return false, err
	}
	return hs == hd, nil
}

func modeOK(fi fs.FileInfo, perm fs.FileMode) bool {
	return runtime.GOOS == "windows" || fi.Mode().Perm() == perm
}

func hashFile(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("reading %s: %w", path, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// link makes dst a symbolic link to target (a name in the same directory), replacing what is there
// atomically; it does nothing when dst already is that link. On Windows it copies src instead:
// symbolic links there need a privilege the installer may not hold, and a link made by one that does
// cannot always be renamed into place (the copy is atomic and skipped when unchanged, like the binary).
func link(target, src, dst string, perm fs.FileMode) (bool, error) {
	if runtime.GOOS == "windows" {
		return copyFile(src, dst, perm)
	}
	if cur, err := os.Readlink(dst); err == nil && cur == target {
		return false, nil
	}
	tmp := filepath.Join(filepath.Dir(dst), tmpPrefix+filepath.Base(dst)+".link")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return false, fmt.Errorf("linking %s to %s: %w", dst, target, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("replacing %s: %w", dst, err)
	}
	return true, nil
}

// removeStaleTemps removes temporary files an interrupted earlier run left in dir.
func removeStaleTemps(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	for _, m := range matches {
		_ = os.Remove(m)
	}
}
