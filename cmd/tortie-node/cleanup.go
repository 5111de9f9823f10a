package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCleanupCommand(env *Env, rf *rootFlags) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove everything tortie programmed on this host, and nothing else",
		Long: `Remove what the dataplane programmed on this host: on Linux tortie's iptables chains and hook
rules (both the legacy and the nf_tables backend, IPv4 and IPv6) and its IP sets; rules and sets of
other software are left as they are. Stop the agent first, or it programs them again. Safe to run on a
clean host (it changes nothing). docs/dataplane-linux.md lists what tortie owns.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := rf.logger(env)
			if err != nil {
				return err
			}
			dp, err := newDataplane(name, env.Getenv, log.With("component", "dataplane"))
			if err != nil {
				return err
			}
			if err := dp.Cleanup(cmd.Context()); err != nil {
				return fmt.Errorf("cleanup of the %s dataplane: %w", dp.Capabilities().Name, err)
			}
			log.Info("host cleaned", "dataplane", dp.Capabilities().Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "dataplane", "", "dataplane: fake, linux or windows (default: the host's OS)")
	return cmd
}
