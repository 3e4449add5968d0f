package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/causeway/causeway/processor/api"
	"github.com/causeway/causeway/processor/apiclient"
	"github.com/spf13/cobra"
)

func newClusterCmd(_ *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show or change the processors' raft membership (join and remove go to the leader)",
	}
	f := addAPIFlags(cmd)
	table := func(r api.ClusterResponse) func(*tabwriter.Writer) {
		return func(tw *tabwriter.Writer) {
			row(tw, "ID", "ADDRESS", "SUFFRAGE", "LEADER")
			for _, s := range r.Servers {
				row(tw, s.ID, s.Address, s.Suffrage, s.Leader)
			}
		}
	}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "List the raft members", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Cluster(cmd.Context())
			if err != nil {
				return err
			}
			return f.emit(cmd.OutOrStdout(), r, table(r))
		},
	}, &cobra.Command{
		Use: "join ID RAFT_ADDRESS", Short: "Add a voter (send to the leader's API)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Join(cmd.Context(), args[0], args[1])
			if err != nil {
				return toTheLeader(err)
			}
			return f.emit(cmd.OutOrStdout(), r, table(r))
		},
	}, &cobra.Command{
		Use: "remove ID", Short: "Remove a member (send to the leader's API)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.Remove(cmd.Context(), args[0])
			if err != nil {
				return toTheLeader(err)
			}
			return f.emit(cmd.OutOrStdout(), r, table(r))
		},
	})
	return cmd
}

// toTheLeader is err of a membership change, naming the leader the node
// knows when it refused the change as a follower: the one to send it to.
func toTheLeader(err error) error {
	var ae *apiclient.Error
	if !apiclient.IsNotLeader(err) || !errors.As(err, &ae) {
		return err
	}
	if ae.Leader == "" {
		return fmt.Errorf("%w (no leader is known: try again once one is elected)", err)
	}
	return fmt.Errorf("%w (the leader is %s: send it to that node's API with --url)", err, ae.Leader)
}
