package service

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	kservice "github.com/kardianos/service"
)

// Names and defaults shared by the service commands, the MSI (installer/windows/tortie.wxs) and the
// PowerShell module; a test checks the MSI against them.
const (
	// Name is the Windows service name (sc.exe query tortie-node) and the Event Log source.
	Name = "tortie-node"
	// DisplayName is what services.msc shows.
	DisplayName = "tortie node agent"
	// Description is the service's description in services.msc.
	Description = "tortie pod networking and network policy for this Kubernetes node (HNS dataplane)."

	// DataDirName is tortie's folder under ProgramData.
	DataDirName = "tortie"
	// EnvFileName is the environment file's name in the data folder.
	EnvFileName = "tortie-node.env"
	// LogDirName is the log folder's name in the data folder.
	LogDirName = "logs"
	// LogFileName is the log file's name in the log folder.
	LogFileName = "tortie-node.log"
)

// kardianos' Windows option keys and values; its own constants exist only in its Windows build, and these
// options are built and tested on every OS.
const (
	optStartType      = "StartType"
	optOnFailure      = "OnFailure"
	optOnFailureDelay = "OnFailureDelayDuration"
	optOnFailureReset = "OnFailureResetPeriod"
	onFailureRestart  = "restart"
	StartAutomatic    = "automatic"
	StartManual       = "manual"
	StartDisabled     = "disabled"
)

// Dependencies are the services tortie-node needs running first: the Host Network Service, which owns
// the HNS networks and endpoints the agent programs.
var Dependencies = []string{"hns"}

// RecoveryAction is one step of the service control manager's failure actions.
type RecoveryAction struct {
	// Restart the service after Delay (the only kind tortie uses: a reboot is never ours to ask for).
	Delay time.Duration
}

// Recovery is the failure policy: the SCM applies Actions[i] on the i-th failure within ResetPeriod and
// the last one on every later failure; OnNonCrashFailures makes a stop with a non-zero exit code count
// as a failure too, not only a crash.
type Recovery struct {
	Actions            []RecoveryAction
	ResetPeriod        time.Duration
	OnNonCrashFailures bool
}

// DefaultRecovery restarts quickly once (a transient error), then backs off so a node whose datastore is
// down is not hammered, and forgets failures after a day.
var DefaultRecovery = Recovery{
	Actions:            []RecoveryAction{{Delay: 5 * time.Second}, {Delay: 15 * time.Second}, {Delay: 60 * time.Second}},
	ResetPeriod:        24 * time.Hour,
	OnNonCrashFailures: true,
}

// Options are where the service keeps its files and how it is registered. The zero value is not
// usable; start from DefaultOptions.
type Options struct {
	// Name is the service name (default Name).
	Name string
	// Executable is the program the SCM starts; empty means the running executable.
	Executable string
	// EnvFile is the environment file the service reads (default ProgramData\tortie\tortie-node.env).
	EnvFile string
	// LogDir holds the rotating log file (default ProgramData\tortie\logs).
	LogDir string
	// LogMaxBytes and LogBackups tune rotation (defaults DefaultLogMaxBytes, DefaultLogBackups).
	LogMaxBytes int64
	LogBackups  int
	// StartType is kardianos' start type: "automatic" (default), "manual" or "disabled".
	StartType string
	// Recovery is the failure policy (default DefaultRecovery).
	Recovery Recovery
}

// DefaultOptions returns the options for a node whose ProgramData folder is programData.
func DefaultOptions(programData string) Options {
	data := filepath.Join(programData, DataDirName)
	return Options{
		Name:        Name,
		EnvFile:     filepath.Join(data, EnvFileName),
		LogDir:      filepath.Join(data, LogDirName),
		LogMaxBytes: DefaultLogMaxBytes,
		LogBackups:  DefaultLogBackups,
		StartType:   StartAutomatic,
		Recovery:    DefaultRecovery,
	}
}

// LogFile is the path of the current log file.
func (o Options) LogFile() string { return filepath.Join(o.LogDir, LogFileName) }

// Validate checks the options a user can set; errors name the flag.
func (o Options) Validate() error {
	switch o.StartType {
	case StartAutomatic, StartManual, StartDisabled:
	default:
		return fmt.Errorf("--start-type=%q: use automatic, manual or disabled", o.StartType)
	}
	if o.EnvFile == "" || !filepath.IsAbs(o.EnvFile) {
		return fmt.Errorf("--env-file=%q: give an absolute path (the service does not start in this folder)", o.EnvFile)
	}
	if o.LogDir == "" || !filepath.IsAbs(o.LogDir) {
		return fmt.Errorf("--log-dir=%q: give an absolute path (the service does not start in this folder)", o.LogDir)
	}
	if o.LogMaxBytes < 1024 {
		return fmt.Errorf("log file size %d bytes: give at least 1 KiB", o.LogMaxBytes)
	}
	if len(o.Recovery.Actions) == 0 {
		return fmt.Errorf("service %s: no recovery action; a failed agent would stay stopped", o.Name)
	}
	return nil
}

// Arguments are the command-line arguments the SCM passes: `service run` plus the paths when they are not
// the defaults for programData (so the MSI's plain "service run" and a default install agree).
func (o Options) Arguments(programData string) []string {
	args := []string{"service", "run"}
	def := DefaultOptions(programData)
	if o.EnvFile != def.EnvFile {
		args = append(args, "--env-file", o.EnvFile)
	}
	if o.LogDir != def.LogDir {
		args = append(args, "--log-dir", o.LogDir)
	}
	return args
}

// KardianosConfig is the service.Config for kardianos: auto start, the HNS dependency, and the first
// recovery action (kardianos sets only one; Configure sets the whole list afterwards).
func (o Options) KardianosConfig(programData string) *kservice.Config {
	first := o.Recovery.Actions[0]
	return &kservice.Config{
		Name:         o.Name,
		DisplayName:  DisplayName,
		Description:  Description,
		Executable:   o.Executable,
		Arguments:    o.Arguments(programData),
		Dependencies: append([]string(nil), Dependencies...),
		Option: kservice.KeyValue{
			optStartType:      o.StartType,
			optOnFailure:      onFailureRestart,
			optOnFailureDelay: first.Delay.String(),
			optOnFailureReset: int(o.Recovery.ResetPeriod / time.Second),
		},
	}
}

// String renders the recovery policy as sc.exe qfailure would list it, for status output.
func (r Recovery) String() string {
	parts := make([]string, len(r.Actions))
	for i, a := range r.Actions {
		parts[i] = "restart after " + a.Delay.String()
	}
	s := strings.Join(parts, ", ") + "; reset after " + r.ResetPeriod.String()
	if r.OnNonCrashFailures {
		s += "; also on a non-zero exit"
	}
	return s
}
