// Package cli implements tortiectl, the calicoctl-compatible command line: apply, create, replace and
// delete resources from files, get them as tables, YAML or JSON, and show versions. The same commands run as
// a kubectl plugin when the binary is called kubectl-tortie.
//
// Commands never call os.Exit and never touch the process's standard streams or environment directly:
// Main takes them in an Env, returns the exit code, and cmd/tortiectl is a thin wrapper. Tests drive Main
// with buffers, a map for the environment and their own datastore.
//
// Writes are all-or-nothing at the validation stage: every document of every input is decoded, defaulted
// and validated before the first write, so a bad document stores nothing. Datastore errors after that
// point are reported per resource, and the command exits non-zero after reporting what succeeded.
package cli
