package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tortie-net/tortie/common/api"
)

// DefaultAgentConfigFile is where the agent looks for its config file when FELIX_CONFIGFILE is unset
// (Felix's path, so an existing felix.cfg keeps working). A missing file there is not an error.
const DefaultAgentConfigFile = "/etc/calico/felix.cfg"

// ConfigFileEnv names the config file (TORTIE_CONFIGFILE wins over it).
const ConfigFileEnv = "FELIX_CONFIGFILE"

// value is one layer's text for a setting and where it came from, for messages.
type value struct {
	text  string
	where string // `environment variable FELIX_X`, `/etc/calico/felix.cfg:12`, `FelixConfiguration "default" field spec.x`
}

// Loader layers the agent's settings and follows FelixConfiguration changes. Safe for concurrent use.
type Loader struct {
	nodeName string
	log      *slog.Logger

	mu            sync.Mutex
	env, file     map[string]value // by setting name
	global, node  map[string]value
	current       Agent
	effective     map[string]value  // by setting name: the value in force
	sources       map[string]Source // by setting name
	warned        map[string]bool   // FelixConfiguration fields reported as not implemented
	restartNeeded map[string]string // setting name -> the value waiting for a restart
}

// Change is what a FelixConfiguration update did.
type Change struct {
	// Live are the settings whose new value is in force now.
	Live []string
	// Restart are the settings whose value changed but takes effect only after a restart.
	Restart []string
	// Rejected are values that did not parse; the last good value was kept.
	Rejected []error
}

// LoadAgent reads the environment and the config file and layers them over the built-in defaults. A
// value that does not parse is an error naming its source (variable or file:line) and the expected
// form; every bad value is reported, not only the first. log receives the notices about settings tortie
// does not implement.
func LoadAgent(getenv func(string) string, nodeName string, log *slog.Logger) (*Loader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loader{nodeName: nodeName, log: log, env: map[string]value{}, file: map[string]value{},
		global: map[string]value{}, node: map[string]value{}, effective: map[string]value{}, sources: map[string]Source{},
		warned: map[string]bool{}, restartNeeded: map[string]string{}}
	for _, s := range Settings {
		if v, from := Lookup(getenv, s.Env); v != "" {
			l.env[s.Name] = value{text: v, where: "environment variable " + from}
		}
	}
	path, from := Lookup(getenv, ConfigFileEnv)
	explicit := path != ""
	if !explicit {
		path = DefaultAgentConfigFile
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if l.file, err = l.parseFile(path, data); err != nil {
			return nil, err
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		how := "the default config file"
		if explicit {
			how = "the config file named by " + from
		}
		return nil, fmt.Errorf("reading %s %s: %w", how, path, err)
	}
	var errs []error
	for _, s := range Settings {
		if err := l.settle(s, true); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	clear(l.restartNeeded)
	return l, nil
}

// parseFile reads Felix's INI config: "Name = value" lines, "#" and ";" comments, an optional [global]
// section. A key that is not a tortie setting is an error unless it is a Felix setting tortie does not
// implement (logged once).
func (l *Loader) parseFile(path string, data []byte) (map[string]value, error) {
	out := map[string]value{}
	known := fieldNames()
	sc := bufio.NewScanner(bytes.NewReader(data))
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		where := path + ":" + strconv.Itoa(n)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.EqualFold(line, "[global]") {
				errs = append(errs, fmt.Errorf("%s: section %s: only [global] is read", where, line))
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %q is not \"Name = value\"", where, line))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		i := slices.IndexFunc(Settings, func(s Setting) bool { return strings.EqualFold(s.Name, k) })
		if i < 0 {
			if known[strings.ToLower(k)] {
				l.unimplemented(k, where)
				continue
			}
			errs = append(errs, fmt.Errorf("%s: unknown setting %q (docs/agent.md lists the settings)", where, k))
			continue
		}
		out[Settings[i].Name] = value{text: v, where: where}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading %s: %w", path, err))
	}
	return out, errors.Join(errs...)
}

// fieldNames returns the lower-cased FelixConfiguration spec field names (Felix's file keys are the
// same names).
func fieldNames() map[string]bool {
	out := map[string]bool{}
	t := reflect.TypeFor[api.FelixConfigurationSpec]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[strings.ToLower(name)] = true
		}
	}
	return out
}

func (l *Loader) unimplemented(name, where string) {
	key := strings.ToLower(name)
	if l.warned[key] {
		return
	}
	l.warned[key] = true
	l.log.Warn("setting not implemented by tortie; ignored", "setting", name, "where", where)
}

// settle recomputes one setting from its layers. At start (initial) a bad env or file value is an
// error; a bad FelixConfiguration value is logged and the next layer (or the last good value) is used.
func (l *Loader) settle(s Setting, initial bool) error {
	layers := []struct {
		src Source
		m   map[string]value
	}{{SourceEnv, l.env}, {SourceFile, l.file}, {SourceNode, l.node}, {SourceGlobal, l.global}}
	for _, layer := range layers {
		v, ok := layer.m[s.Name]
		if !ok {
			continue
		}
		err := l.set(s, v, layer.src, initial)
		if err == nil {
			return nil
		}
		if layer.src == SourceEnv || layer.src == SourceFile {
			return err
		}
		if _, had := l.effective[s.Name]; had && !initial {
			return err // keep the last good value
		}
		l.log.Error("bad FelixConfiguration value; using the next source", "error", err.Error())
	}
	return l.set(s, value{text: s.Default, where: "built-in default"}, SourceDefault, initial)
}

// set parses v into a scratch copy, then installs it when it is live, new or unchanged.
func (l *Loader) set(s Setting, v value, src Source, initial bool) error {
	next := l.current
	if err := s.set(&next, v.text); err != nil {
		return fmt.Errorf("%s: %s=%q: want %s: %w", v.where, s.Name, v.text, s.Want, err)
	}
	old, had := l.effective[s.Name]
	if had && old.text == v.text {
		l.effective[s.Name], l.sources[s.Name] = v, src
		delete(l.restartNeeded, s.Name)
		return nil
	}
	if had && !initial && !s.Live {
		l.restartNeeded[s.Name] = v.text
		return nil
	}
	l.current = next
	l.effective[s.Name], l.sources[s.Name] = v, src
	delete(l.restartNeeded, s.Name)
	return nil
}

// Current returns the settings in force.
func (l *Loader) Current() Agent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current
}

// Source returns where the value in force of the named setting came from, and its text.
func (l *Loader) Source(name string) (Source, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sources[name], l.effective[name].text
}

// RestartNeeded returns the settings whose changed value waits for a restart, sorted.
func (l *Loader) RestartNeeded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(mapKeys(l.restartNeeded))
}

// SetFelixConfiguration installs (spec non-nil) or removes (nil) the FelixConfiguration called name;
// names other than "default" and "node.<this node>" are ignored. Fields tortie does not implement are
// logged once each by name. It returns what changed.
func (l *Loader) SetFelixConfiguration(name string, spec *api.FelixConfigurationSpec) Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.setFC(name, spec, false)
}

// Prime installs the FelixConfigurations read at start-up (nil: absent), before the agent uses any
// setting: unlike a later change, a value for a setting that is not live takes effect.
func (l *Loader) Prime(global, node *api.FelixConfigurationSpec) Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := l.setFC("default", global, true)
	nch := l.setFC("node."+l.nodeName, node, true)
	ch.Live = append(ch.Live, nch.Live...)
	ch.Rejected = append(ch.Rejected, nch.Rejected...)
	clear(l.restartNeeded)
	return ch
}

func (l *Loader) setFC(name string, spec *api.FelixConfigurationSpec, initial bool) Change {
	var layer *map[string]value
	switch name {
	case "default":
		layer = &l.global
	case "node." + l.nodeName:
		layer = &l.node
	default:
		return Change{}
	}
	vals := map[string]value{}
	var ch Change
	if spec != nil {
		raw, err := json.Marshal(spec)
		if err != nil {
			ch.Rejected = append(ch.Rejected, fmt.Errorf("FelixConfiguration %q: %w", name, err))
			return ch
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			ch.Rejected = append(ch.Rejected, fmt.Errorf("FelixConfiguration %q: %w", name, err))
			return ch
		}
		byField := map[string]Setting{}
		for _, s := range Settings {
			if s.Field != "" {
				byField[s.Field] = s
			}
		}
		for _, f := range slices.Sorted(mapKeys(fields)) {
			where := fmt.Sprintf("FelixConfiguration %q field spec.%s", name, f)
			s, ok := byField[f]
			if !ok {
				l.unimplemented(f, where)
				continue
			}
			text, err := fieldText(s, fields[f])
			if err != nil {
				ch.Rejected = append(ch.Rejected, fmt.Errorf("%s: want %s: %w", where, s.Want, err))
				l.log.Error("bad FelixConfiguration value; keeping the value in force", "error", ch.Rejected[len(ch.Rejected)-1].Error())
				if old, ok := (*layer)[s.Name]; ok {
					vals[s.Name] = old
				}
				continue
			}
			vals[s.Name] = value{text: text, where: where}
		}
	}
	*layer = vals
	for _, s := range Settings {
		before, wasWaiting := l.effective[s.Name].text, l.restartNeeded[s.Name]
		if err := l.settle(s, initial); err != nil {
			ch.Rejected = append(ch.Rejected, err)
			l.log.Error("bad FelixConfiguration value; keeping the value in force", "error", err.Error())
			continue
		}
		if after := l.effective[s.Name].text; after != before {
			ch.Live = append(ch.Live, s.Name)
			l.log.Info("setting changed", "setting", s.Name, "value", after, "source", l.sources[s.Name].String())
		}
		if w, ok := l.restartNeeded[s.Name]; ok && w != wasWaiting {
			ch.Restart = append(ch.Restart, s.Name)
			l.log.Warn("setting changed; it takes effect after a restart", "setting", s.Name, "value", w,
				"in_force", l.effective[s.Name].text)
		}
	}
	return ch
}

// fieldText turns a FelixConfiguration field's JSON into the setting's text form.
func fieldText(s Setting, raw json.RawMessage) (string, error) {
	if s.fromField != nil {
		return s.fromField(raw)
	}
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		return "", err
	}
	switch v := x.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("unexpected JSON %s", raw)
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
