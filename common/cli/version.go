package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/common/api"
	"github.com/tortie-net/tortie/common/datastore"
	"github.com/tortie-net/tortie/common/version"
)

// versionTimeout bounds the cluster lookup of version: it is informational, so it gives up sooner than
// the other commands.
const versionTimeout = 5 * time.Second

func newVersionCommand(s *state) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the client version and, when the datastore answers, the cluster version",
		Long: `Show the client version and, when the datastore answers, the cluster's version and type from
ClusterInformation "default". An unreachable datastore is reported on stderr but is not an error.`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := version.Get()
			w := s.stdout()
			printf(w, "Client Version:    %s\n", v.Version)
			if v.GitCommit != "" {
				printf(w, "Git commit:        %s\n", v.GitCommit)
			}
			printf(w, "Go version:        %s\n", v.GoVersion)
			printf(w, "Platform:          %s\n", v.Platform)
			if clientOnly {
				return nil
			}
			if !cmd.Flags().Changed("timeout") {
				s.timeout = versionTimeout
			}
			ci, err := s.clusterInfo(cmd)
			if err != nil {
				printf(s.stderr(), "Unable to retrieve Cluster Version or Type: %v\n", err)
				return nil
			}
			printf(w, "Cluster Version:   %s\n", ci.Spec.CalicoVersion)
			printf(w, "Cluster Type:      %s\n", ci.Spec.ClusterType)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show only the client version; do not contact the datastore")
	return cmd
}

func (s *state) clusterInfo(cmd *cobra.Command) (*api.ClusterInformation, error) {
	be, err := s.backend(cmd)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), s.timeout)
	defer cancel()
	key := datastore.Key{Kind: api.KindClusterInformation, Name: "default"}
	obj, err := be.Get(ctx, key)
	if err != nil {
		return nil, describeErr(key, err)
	}
	ci, ok := obj.(*api.ClusterInformation)
	if !ok {
		return nil, fmt.Errorf("%s: datastore returned %T", keyString(key), obj)
	}
	return ci, nil
}
