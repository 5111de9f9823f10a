// Package service makes tortie-node a Windows service with github.com/kardianos/service: the install
// options (auto start, restart-on-failure recovery actions, the environment file the service reads), the
// run/stop lifecycle of the service body, the rotating log file under ProgramData, error reporting to
// the Windows Event Log, and the node's prerequisite checks (`tortie-node service check`).
//
// Everything except the few calls kardianos does not make (the full recovery-action list and the
// event-log source, in service_windows.go) is platform-neutral and tested on Linux: kardianos'
// service.Interface is implemented by Program, and service.Service by the stateful fake SCM in
// windows/service/scmfake, which starts, stops, and — after an unexpected exit — restarts the program the
// way the Windows service control manager does with the recovery actions set here.
//
// Layout on a Windows node (ProgramData is %ProgramData%, normally C:\ProgramData):
//
//	ProgramData\tortie\tortie-node.env   KEY=VALUE settings the service reads (written by the MSI and
//	                                      by `tortie-node service install --env K=V`)
//	ProgramData\tortie\logs\tortie-node.log (+ .1 … .N after rotation)
//
// Settings in the environment file win over the service process's environment, so that an operator's
// machine-wide variables (for example a KUBECONFIG set for kubectl) do not silently change the agent.
package service
