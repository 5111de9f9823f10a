package config

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/dpmodel"
)

// loadWith loads with env and an agent config file holding file (none when file is "").
func loadWith(t *testing.T, env map[string]string, file string) (*Loader, *bytes.Buffer, error) {
	t.Helper()
	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	path := filepath.Join(t.TempDir(), "felix.cfg")
	if file != "" {
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		e["TORTIE_CONFIGFILE"] = path
	} else if e["FELIX_CONFIGFILE"] == "" {
		// Point away from /etc/calico/felix.cfg so the host's file cannot leak in; missing is fine here.
		e["TORTIE_CONFIGFILE"] = ""
	}
	var logs bytes.Buffer
	l, err := LoadAgent(func(k string) string { return e[k] }, "node-a", slog.New(slog.NewTextHandler(&logs, nil)))
	return l, &logs, err
}

func TestAgentDefaults(t *testing.T) {
	l, _, err := loadWith(t, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Current()
	if a.LogLevel != slog.LevelInfo || !a.HealthEnabled || a.HealthHost != "localhost" || a.HealthPort != 9099 ||
		a.ApplyMinInterval != 100*time.Millisecond || a.ResyncInterval() != 90*time.Second || a.VXLANVNI != 4096 ||
		a.WatchdogTimeout != 90*time.Second || a.VXLANEnabled != nil || len(a.FailsafeInbound) != 9 {
		t.Errorf("defaults: %+v", a)
	}
	cfg := a.Dataplane("node-a", true, false)
	want := dpmodel.Config{NodeName: "node-a", InterfacePrefixes: []string{"cali"}, DefaultEndpointToHostAction: "Drop",
		FailsafeInbound: a.FailsafeInbound, FailsafeOutbound: a.FailsafeOutbound, IPv6Enabled: true, VXLANEnabled: true,
		VXLANEnabledV6: true, VXLANPort: 4789, VXLANVNI: 4096, LogPrefix: "calico-packet", DenyAction: "Drop"}
	if diff := cmp.Diff(want, cfg, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("dataplane config (-want +got):\n%s", diff)
	}
	for _, s := range Settings {
		if src, text := l.Source(s.Name); src != SourceDefault || text != s.Default {
			t.Errorf("%s: source %v value %q, want the default %q", s.Name, src, text, s.Default)
		}
	}
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
func ptr[T any](v T) *T                    { return &v }

func TestAgentLayering(t *testing.T) {
	for _, tc := range []struct {
		name         string
		env          map[string]string
		file         string
		node, global *api.FelixConfigurationSpec
		setting      string
		wantSource   Source
		wantText     string
		check        func(a Agent) bool
	}{
		{name: "default", setting: "HealthPort", wantSource: SourceDefault, wantText: "9099"},
		{name: "global", global: &api.FelixConfigurationSpec{HealthPort: ptr(9100)},
			setting: "HealthPort", wantSource: SourceGlobal, wantText: "9100", check: func(a Agent) bool { return a.HealthPort == 9100 }},
		{name: "node over global", global: &api.FelixConfigurationSpec{LogSeverityScreen: "Warning"},
			node: &api.FelixConfigurationSpec{LogSeverityScreen: "Debug"}, setting: "LogSeverityScreen", wantSource: SourceNode,
			wantText: "Debug", check: func(a Agent) bool { return a.LogLevel == slog.LevelDebug }},
		{name: "file over node", file: "[global]\n# comment\nLogSeverityScreen = error\n",
			node: &api.FelixConfigurationSpec{LogSeverityScreen: "Debug"}, setting: "LogSeverityScreen", wantSource: SourceFile,
			wantText: "error", check: func(a Agent) bool { return a.LogLevel == slog.LevelError }},
		{name: "env over file", env: map[string]string{"FELIX_LOGSEVERITYSCREEN": "warning"}, file: "logseverityscreen=error\n",
			setting: "LogSeverityScreen", wantSource: SourceEnv, wantText: "warning"},
		{name: "TORTIE_ over FELIX_", env: map[string]string{"FELIX_HEALTHPORT": "9100", "TORTIE_HEALTHPORT": "9200"},
			setting: "HealthPort", wantSource: SourceEnv, wantText: "9200"},
		{name: "tortie-only setting", env: map[string]string{"TORTIE_DATAPLANEAPPLYMININTERVAL": "2s"},
			setting: "DataplaneApplyMinInterval", wantSource: SourceEnv, wantText: "2s",
			check: func(a Agent) bool { return a.ApplyMinInterval == 2*time.Second }},
		{name: "resync is the shortest refresh", global: &api.FelixConfigurationSpec{RouteRefreshInterval: dur(0),
			IpsetsRefreshInterval: dur(30 * time.Second)}, setting: "RouteRefreshInterval", wantSource: SourceGlobal, wantText: "0s",
			check: func(a Agent) bool { return a.ResyncInterval() == 30*time.Second }},
		{name: "failsafe ports from FelixConfiguration", global: &api.FelixConfigurationSpec{
			FailsafeInboundHostPorts: &[]api.ProtoPort{{Protocol: "UDP", Port: 53, Net: "10.0.0.0/8"}, {Port: 22}}},
			setting: "FailsafeInboundHostPorts", wantSource: SourceGlobal, wantText: "UDP:10.0.0.0/8:53,tcp:22",
			check: func(a Agent) bool {
				return cmp.Equal(a.FailsafeInbound, []dpmodel.ProtoPort{{Protocol: "udp", Port: 53, Net: mustPrefix("10.0.0.0/8")},
					{Protocol: "tcp", Port: 22}}, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}))
			}},
		{name: "empty failsafe list", global: &api.FelixConfigurationSpec{FailsafeOutboundHostPorts: &[]api.ProtoPort{}},
			setting: "FailsafeOutboundHostPorts", wantSource: SourceGlobal, wantText: "none",
			check: func(a Agent) bool { return len(a.FailsafeOutbound) == 0 }},
		{name: "forced VXLAN", node: &api.FelixConfigurationSpec{VXLANEnabled: ptr(false)}, setting: "VXLANEnabled",
			wantSource: SourceNode, wantText: "false", check: func(a Agent) bool { return !a.Dataplane("n", true, false).VXLANEnabled }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Values from FelixConfiguration at start count like the others (non-live ones too).
			l, _, err := loadWith(t, tc.env, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if ch := l.Prime(tc.global, tc.node); len(ch.Rejected) > 0 {
				t.Fatal(ch.Rejected)
			}
			src, text := l.Source(tc.setting)
			if src != tc.wantSource || text != tc.wantText {
				t.Errorf("%s: source %v value %q, want %v %q", tc.setting, src, text, tc.wantSource, tc.wantText)
			}
			if tc.check != nil && !tc.check(l.Current()) {
				t.Errorf("%s: the Agent value is wrong: %+v", tc.setting, l.Current())
			}
		})
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestAgentBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		file string
		want []string // substrings of the error
	}{
		{"bad env port", map[string]string{"FELIX_HEALTHPORT": "99999"}, "",
			[]string{"environment variable FELIX_HEALTHPORT", `HealthPort="99999"`, "want a port number 1-65535"}},
		{"bad TORTIE_ env duration", map[string]string{"TORTIE_ROUTEREFRESHINTERVAL": "soon"}, "",
			[]string{"environment variable TORTIE_ROUTEREFRESHINTERVAL", "want a duration"}},
		{"bad file value names file and line", nil, "# c\n[global]\nLogSeverityScreen = loud\n",
			[]string{"felix.cfg:3", `LogSeverityScreen="loud"`, "want one of Debug"}},
		{"every bad value is reported", map[string]string{"FELIX_VXLANVNI": "0"}, "DefaultEndpointToHostAction = Allow\n",
			[]string{"FELIX_VXLANVNI", "felix.cfg:1", "Drop, Return or Accept"}},
		{"unknown file key", nil, "LogSevrityScreen = info\n", []string{"felix.cfg:1", `unknown setting "LogSevrityScreen"`}},
		{"not a key=value line", nil, "hello\n", []string{"felix.cfg:1", "is not \"Name = value\""}},
		{"other section", nil, "[other]\n", []string{"felix.cfg:1", "only [global]"}},
		{"missing explicit file", map[string]string{"FELIX_CONFIGFILE": "/nonexistent/felix.cfg"}, "",
			[]string{"config file named by FELIX_CONFIGFILE", "/nonexistent/felix.cfg"}},
		{"bad failsafe", map[string]string{"FELIX_FAILSAFEINBOUNDHOSTPORTS": "icmp:22"}, "",
			[]string{"FELIX_FAILSAFEINBOUNDHOSTPORTS", "protocol must be tcp, udp or sctp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadWith(t, tc.env, tc.file)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAgentUnimplementedLoggedOnce(t *testing.T) {
	l, logs, err := loadWith(t, nil, "BPFEnabled = true\nbpfenabled = false\n")
	if err != nil {
		t.Fatal(err)
	}
	spec := &api.FelixConfigurationSpec{WireguardEnabled: ptr(true), BPFEnabled: ptr(false), HealthPort: ptr(9099)}
	l.SetFelixConfiguration("default", spec)
	l.SetFelixConfiguration("node.node-a", spec)
	for _, name := range []string{"BPFEnabled", "wireguardEnabled"} {
		if n := strings.Count(logs.String(), "setting="+name+" "); n != 1 {
			t.Errorf("%s logged %d times, want once:\n%s", name, n, logs)
		}
	}
	if strings.Contains(logs.String(), "setting=healthPort") {
		t.Errorf("an implemented field was reported as not implemented:\n%s", logs)
	}
}

func TestAgentLiveChanges(t *testing.T) {
	l, logs, err := loadWith(t, map[string]string{"FELIX_IPTABLESREFRESHINTERVAL": "60s"}, "")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name         string
		fc           string
		spec         *api.FelixConfigurationSpec
		wantLive     []string
		wantRestart  []string
		wantRejected int
		check        func(a Agent) bool
	}{
		{"live change applies", "default", &api.FelixConfigurationSpec{LogSeverityScreen: "Debug", RouteRefreshInterval: dur(10 * time.Second)},
			[]string{"LogSeverityScreen", "RouteRefreshInterval"}, nil, 0,
			func(a Agent) bool { return a.LogLevel == slog.LevelDebug && a.ResyncInterval() == 10*time.Second }},
		{"env still wins over a live change", "default", &api.FelixConfigurationSpec{LogSeverityScreen: "Debug",
			RouteRefreshInterval: dur(10 * time.Second), IptablesRefreshInterval: dur(time.Second)}, nil, nil, 0,
			func(a Agent) bool { return a.IptablesRefresh == 60*time.Second }},
		{"non-live change waits for a restart", "node.node-a", &api.FelixConfigurationSpec{HealthPort: ptr(9200)},
			nil, []string{"HealthPort"}, 0, func(a Agent) bool { return a.HealthPort == 9099 }},
		{"bad live change keeps the last good value", "node.node-a", &api.FelixConfigurationSpec{HealthPort: ptr(9200),
			VXLANMTU: ptr(-1), LogSeverityScreen: "chatty"}, nil, nil, 2,
			func(a Agent) bool { return a.LogLevel == slog.LevelDebug && a.VXLANMTU == 0 }},
		{"other nodes are ignored", "node.node-b", &api.FelixConfigurationSpec{LogSeverityScreen: "Error"}, nil, nil, 0,
			func(a Agent) bool { return a.LogLevel == slog.LevelDebug }},
		{"node deleted: back to global, restart no longer needed", "node.node-a", nil, nil, nil, 0,
			func(a Agent) bool { return a.HealthPort == 9099 && a.LogLevel == slog.LevelDebug }},
		{"global deleted: back to defaults", "default", nil, []string{"LogSeverityScreen", "RouteRefreshInterval"}, nil, 0,
			func(a Agent) bool { return a.LogLevel == slog.LevelInfo && a.ResyncInterval() == 60*time.Second }},
	}
	for _, st := range steps {
		ch := l.SetFelixConfiguration(st.fc, st.spec)
		if !cmp.Equal(ch.Live, st.wantLive) || !cmp.Equal(ch.Restart, st.wantRestart) || len(ch.Rejected) != st.wantRejected {
			t.Errorf("%s: change live=%v restart=%v rejected=%v; want live=%v restart=%v and %d rejected",
				st.name, ch.Live, ch.Restart, ch.Rejected, st.wantLive, st.wantRestart, st.wantRejected)
		}
		if !st.check(l.Current()) {
			t.Errorf("%s: settings %+v", st.name, l.Current())
		}
		if st.name == "non-live change waits for a restart" && !cmp.Equal(l.RestartNeeded(), []string{"HealthPort"}) {
			t.Errorf("%s: RestartNeeded = %v", st.name, l.RestartNeeded())
		}
		if st.wantRejected > 0 {
			for _, w := range []string{`FelixConfiguration \"node.node-a\" field spec.vxlanMTU`, "want an MTU"} {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("%s: the log does not name %q:\n%s", st.name, w, logs)
				}
			}
		}
	}
	if len(l.RestartNeeded()) != 0 {
		t.Errorf("restart still needed for %v after the change was undone", l.RestartNeeded())
	}
}

// TestAgentSettingsDocumented: docs/agent.md lists every setting with its env, field, default and
// whether it is live.
func TestAgentSettingsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "agent.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Settings {
		field, def, live := "—", "(unset)", "restart"
		if s.Field != "" {
			field = "`" + s.Field + "`"
		}
		if s.Default != "" {
			def = "`" + s.Default + "`"
		}
		if s.Live {
			live = "live"
		}
		row := "| `" + s.Name + "` | `" + s.Env + "` | " + field + " | " + def + " | " + live + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/agent.md lacks the row %s", row)
		}
	}
}
