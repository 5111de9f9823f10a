package config

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"FELIX_LOGSEVERITYSCREEN", []string{"TORTIE_LOGSEVERITYSCREEN", "FELIX_LOGSEVERITYSCREEN"}},
		{"CALICO_IPV4POOL_CIDR", []string{"TORTIE_IPV4POOL_CIDR", "CALICO_IPV4POOL_CIDR"}},
		{"DATASTORE_TYPE", []string{"TORTIE_DATASTORE_TYPE", "DATASTORE_TYPE", "CALICO_DATASTORE_TYPE"}},
		{"IP_AUTODETECTION_METHOD", []string{"TORTIE_IP_AUTODETECTION_METHOD", "IP_AUTODETECTION_METHOD", "CALICO_IP_AUTODETECTION_METHOD"}},
		{"TORTIE_HEALTH_PORT", []string{"TORTIE_HEALTH_PORT"}},
	} {
		if diff := cmp.Diff(tc.want, Names(tc.name)); diff != "" {
			t.Errorf("Names(%q) (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestLookupPrecedence(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		env       map[string]string
		name      string
		val, from string
	}{
		{"unset", nil, "FELIX_X", "", ""},
		{"calico name", map[string]string{"FELIX_X": "1"}, "FELIX_X", "1", "FELIX_X"},
		{"tortie wins", map[string]string{"FELIX_X": "1", "TORTIE_X": "2"}, "FELIX_X", "2", "TORTIE_X"},
		{"blank tortie ignored", map[string]string{"FELIX_X": "1", "TORTIE_X": "  "}, "FELIX_X", "1", "FELIX_X"},
		{"bare over CALICO_", map[string]string{"DATASTORE_TYPE": "etcdv3", "CALICO_DATASTORE_TYPE": "kubernetes"}, "DATASTORE_TYPE", "etcdv3", "DATASTORE_TYPE"},
		{"CALICO_ form of bare", map[string]string{"CALICO_DATASTORE_TYPE": "kubernetes"}, "DATASTORE_TYPE", "kubernetes", "CALICO_DATASTORE_TYPE"},
		{"bare not accepted for FELIX_", map[string]string{"X": "1"}, "FELIX_X", "", ""},
		{"trimmed", map[string]string{"CALICO_IPV4POOL_CIDR": " 10.0.0.0/16\n"}, "CALICO_IPV4POOL_CIDR", "10.0.0.0/16", "CALICO_IPV4POOL_CIDR"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			v, from := Lookup(mapEnv(tc.env), tc.name)
			if v != tc.val || from != tc.from {
				t.Errorf("Lookup(%q) = %q from %q, want %q from %q", tc.name, v, from, tc.val, tc.from)
			}
		})
	}
}

func TestLookupTyped(t *testing.T) {
	env := mapEnv(map[string]string{
		"FELIX_B": "Enabled", "FELIX_BAD": "maybe", "FELIX_D": "90", "FELIX_D2": "1m30s", "FELIX_DBAD": "soon",
		"FELIX_N": "42", "TORTIE_NBAD": "4x",
	})
	if b, err := LookupBool(env, "FELIX_B", false); err != nil || !b {
		t.Errorf("LookupBool(FELIX_B) = %v, %v", b, err)
	}
	if b, err := LookupBool(env, "FELIX_UNSET", true); err != nil || !b {
		t.Errorf("LookupBool(unset, def true) = %v, %v", b, err)
	}
	_, err := LookupBool(env, "FELIX_BAD", false)
	var ee *EnvError
	if !errors.As(err, &ee) || ee.Var != "FELIX_BAD" || ee.Value != "maybe" {
		t.Errorf("LookupBool(FELIX_BAD) error = %v, want an EnvError naming FELIX_BAD", err)
	}
	for name, want := range map[string]time.Duration{"FELIX_D": 90 * time.Second, "FELIX_D2": 90 * time.Second} {
		if d, err := LookupDuration(env, name, 0); err != nil || d != want {
			t.Errorf("LookupDuration(%s) = %v, %v; want %v", name, d, err, want)
		}
	}
	if _, err := LookupDuration(env, "FELIX_DBAD", 0); err == nil {
		t.Error("LookupDuration(FELIX_DBAD) succeeded")
	}
	if n, err := LookupInt(env, "FELIX_N", 0); err != nil || n != 42 {
		t.Errorf("LookupInt(FELIX_N) = %v, %v", n, err)
	}
	if _, err := LookupInt(env, "FELIX_NBAD", 0); err == nil || !errors.As(err, &ee) || ee.Var != "TORTIE_NBAD" {
		t.Errorf("LookupInt(FELIX_NBAD) error = %v, want one naming TORTIE_NBAD", err)
	}
}
