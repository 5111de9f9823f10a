package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The one alias rule for environment variables, used by every tortie binary.
//
// A setting is named by the variable Calico reads for it ("the Calico name"): FELIX_LOGSEVERITYSCREEN,
// CALICO_IPV4POOL_CIDR, or a bare name such as DATASTORE_TYPE, IP_AUTODETECTION_METHOD or NODENAME.
// Its value is the first non-empty one of, in order:
//
//  1. TORTIE_<base>, where <base> is the Calico name without its FELIX_ or CALICO_ prefix
//     (TORTIE_LOGSEVERITYSCREEN, TORTIE_IPV4POOL_CIDR, TORTIE_DATASTORE_TYPE);
//  2. the Calico name itself;
//  3. for a bare Calico name only, CALICO_<name>, which calicoctl also accepts (CALICO_DATASTORE_TYPE,
//     CALICO_ETCD_ENDPOINTS).
//
// Values are trimmed of surrounding white space; a variable set to only white space counts as unset.
// A setting with no Calico equivalent is named TORTIE_<base> directly and has only that one name.

// Names returns the variables that carry the setting Calico calls name, most specific first.
func Names(name string) []string {
	base, prefixed := StripPrefix(name)
	switch {
	case strings.HasPrefix(name, "TORTIE_"):
		return []string{name}
	case prefixed:
		return []string{"TORTIE_" + base, name}
	default:
		return []string{"TORTIE_" + name, name, "CALICO_" + name}
	}
}

// Alias returns the TORTIE_ name of a setting (the name that wins over Calico's).
func Alias(name string) string { return Names(name)[0] }

// StripPrefix removes a leading FELIX_, CALICO_ or TORTIE_ from name and reports whether one was there.
func StripPrefix(name string) (base string, prefixed bool) {
	for _, p := range []string{"FELIX_", "CALICO_", "TORTIE_"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			return rest, true
		}
	}
	return name, false
}

// Lookup returns the value of the setting Calico calls name under the alias rule, and the variable it
// was read from; ("", "") when none of its names is set. getenv nil means an empty environment.
func Lookup(getenv func(string) string, name string) (value, from string) {
	if getenv == nil {
		return "", ""
	}
	for _, n := range Names(name) {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v, n
		}
	}
	return "", ""
}

// EnvError is a value that does not parse; it names the variable, the value and the expected form.
type EnvError struct {
	Var, Value, Want string
	Err              error
}

func (e *EnvError) Error() string {
	return fmt.Sprintf("environment variable %s=%q: want %s", e.Var, e.Value, e.Want)
}

func (e *EnvError) Unwrap() error { return e.Err }

// ParseBool accepts Calico's spellings of a boolean, in any case: true, t, yes, y, 1, enabled and false,
// f, no, n, 0, disabled.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1", "enabled", "enable":
		return true, nil
	case "false", "f", "no", "n", "0", "disabled", "disable":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", s)
}

// ParseDuration accepts a Go duration ("90s", "1m30s") or, as Felix does for its *Secs and *Interval
// settings, a plain number of seconds ("90", "0.5").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration (90s, 1m30s) nor a number of seconds", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// LookupBool reads a boolean setting; unset gives def. A value that does not parse is an *EnvError,
// so that a typo never silently flips a setting.
func LookupBool(getenv func(string) string, name string, def bool) (bool, error) {
	v, from := Lookup(getenv, name)
	if v == "" {
		return def, nil
	}
	b, err := ParseBool(v)
	if err != nil {
		return def, &EnvError{Var: from, Value: v, Want: "true or false", Err: err}
	}
	return b, nil
}

// LookupInt reads an integer setting; unset gives def.
func LookupInt(getenv func(string) string, name string, def int) (int, error) {
	v, from := Lookup(getenv, name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def, &EnvError{Var: from, Value: v, Want: "an integer", Err: err}
	}
	return n, nil
}

// LookupDuration reads a duration setting (see ParseDuration); unset gives def.
func LookupDuration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v, from := Lookup(getenv, name)
	if v == "" {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return def, &EnvError{Var: from, Value: v, Want: "a duration such as 90s or a number of seconds", Err: err}
	}
	return d, nil
}
