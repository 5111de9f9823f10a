// Package embedded runs an etcd server (go.etcd.io/etcd/server/v3/embed) inside the process: the
// zero-configuration datastore for tortie-lab and single-machine installs, and a real etcd for tests.
//
// Defaults: data in /var/lib/tortie/etcd, clients on http://127.0.0.1:2379, the (unused, single member)
// peer listener on http://127.0.0.1:2380, member name "tortie", periodic compaction keeping one hour of
// history. etcd's own logs go to the given slog.Logger at warn level and above, or nowhere.
//
// Talk to it with package etcd: etcd.New(etcd.Config{Endpoints: em.Endpoints()}).
//
// It is a separate package from etcd because the server is large and registers metrics at init: the
// CNI plugin and the CLI, which only need a client, must not link it.
package embedded
