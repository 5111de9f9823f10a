package autodetect

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/tortie-net/tortie/common/config"
)

// Node-name settings and files.
const (
	// EnvNodeName is read under common/config's alias rule (TORTIE_NODENAME, NODENAME,
	// CALICO_NODENAME).
	EnvNodeName = "NODENAME"
	// EnvNodeNameFile / EnvTortieNodeNameFile move the stored-name files (Calico: CALICO_NODENAME_FILE).
	// They are the one exception to the alias rule: two settings for two different files, each read
	// by its exact name (TORTIE_NODENAME_FILE is not an alias of CALICO_NODENAME_FILE).
	EnvNodeNameFile       = "CALICO_NODENAME_FILE"
	EnvTortieNodeNameFile = "TORTIE_NODENAME_FILE"
	// CalicoNodeNameFile is where Calico (and tortie, for CNI compatibility) stores the chosen name; the
	// CNI plugin waits for it.
	CalicoNodeNameFile = "/var/lib/calico/nodename"
	// TortieNodeNameFile is tortie's own copy, read first.
	TortieNodeNameFile = "/var/lib/tortie/nodename"
)

// Node-name sources, as NodeName reports them.
const (
	NameFromEnv      = "env"
	NameFromFile     = "file"
	NameFromHostname = "HOSTNAME"
	NameFromOS       = "os-hostname"
)

// NodeName decides this node's name the way Calico does, first match wins:
//
//  1. TORTIE_NODENAME, then NODENAME (used as given, trimmed);
//  2. the name stored by an earlier start: TORTIE_NODENAME_FILE (default /var/lib/tortie/nodename),
//     then CALICO_NODENAME_FILE (default /var/lib/calico/nodename), trimmed;
//  3. the HOSTNAME environment variable, trimmed and lower-cased;
//  4. the OS hostname, trimmed and lower-cased.
//
// It returns the name and where it came from ("env: NODENAME", "file: /var/lib/calico/nodename", …).
// A missing file is skipped; any other read error is returned, because silently falling through to the
// hostname could register the node under a second name. env nil means os.Getenv, readFile nil
// os.ReadFile, hostname nil os.Hostname.
func NodeName(env func(string) string, readFile func(string) ([]byte, error), hostname func() (string, error)) (name, source string, err error) {
	if env == nil {
		env = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if hostname == nil {
		hostname = os.Hostname
	}
	if v, from := config.Lookup(env, EnvNodeName); v != "" {
		return v, NameFromEnv + ": " + from, nil
	}
	for _, f := range nodeNameFiles(env) {
		data, err := readFile(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("reading the stored node name from %s: %w; fix or remove the file, point %s elsewhere, or set %s",
				f.path, err, f.envVar, EnvNodeName)
		}
		if v := strings.TrimSpace(string(data)); v != "" {
			return v, NameFromFile + ": " + f.path, nil
		}
	}
	if v := strings.ToLower(strings.TrimSpace(env("HOSTNAME"))); v != "" {
		return v, NameFromHostname, nil
	}
	h, err := hostname()
	if err != nil {
		return "", "", fmt.Errorf("determining the node name: the OS hostname is unavailable (%w); set %s", err, EnvNodeName)
	}
	if v := strings.ToLower(strings.TrimSpace(h)); v != "" {
		return v, NameFromOS, nil
	}
	return "", "", fmt.Errorf("determining the node name: NODENAME, the stored name files, HOSTNAME and the OS hostname are all empty; set %s", EnvNodeName)
}

type nodeNameFile struct{ path, envVar string }

func nodeNameFiles(env func(string) string) []nodeNameFile {
	tortie := strings.TrimSpace(env(EnvTortieNodeNameFile))
	if tortie == "" {
		tortie = TortieNodeNameFile
	}
	calico := strings.TrimSpace(env(EnvNodeNameFile))
	if calico == "" {
		calico = CalicoNodeNameFile
	}
	files := []nodeNameFile{{tortie, EnvTortieNodeNameFile}}
	if calico != tortie {
		files = append(files, nodeNameFile{calico, EnvNodeNameFile})
	}
	return files
}
