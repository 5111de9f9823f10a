// Package windowsmanifest tests the HostProcess DaemonSet that runs tortie-node on Windows nodes
// (tortie-node-windows.yaml): it decodes strictly into the k8s.io/api types, has the settings a
// HostProcess pod needs, and is accepted by a real kube-apiserver (server-side dry run).
package windowsmanifest
