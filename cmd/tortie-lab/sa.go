//go:build linux

package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/tortie-net/tortie/linux/lab"
)

func (a *app) sa() *cobra.Command {
	cmd := &cobra.Command{Use: "sa", Short: "add, label or delete service accounts (the profiles ksa.<ns>.<name>)"}
	var labels []string
	add := &cobra.Command{
		Use:   "add NS/NAME [--label k=v]...",
		Short: "add a service account; pods run as it with `pod add --sa NAME`",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := lab.ParseServiceAccountID(args[0]); err != nil {
				return usageError{err}
			}
			ls, err := lab.ParseLabels("--label", labels)
			if err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.AddServiceAccount(cmd.Context(), args[0], ls) })
		},
	}
	add.Flags().StringArrayVar(&labels, "label", nil, "a label k=v (repeatable)")
	label := &cobra.Command{
		Use:   "label NS/NAME k=v...",
		Short: "replace a service account's labels",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := lab.ParseServiceAccountID(args[0]); err != nil {
				return usageError{err}
			}
			ls, err := lab.ParseLabels("label", args[1:])
			if err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.LabelServiceAccount(cmd.Context(), args[0], ls) })
		},
	}
	del := &cobra.Command{
		Use:   "del NS/NAME",
		Short: "delete a service account (its pods keep running, their endpoints keep naming its profile)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := lab.ParseServiceAccountID(args[0]); err != nil {
				return usageError{err}
			}
			return a.withLab(func(l *lab.Lab) error { return l.DeleteServiceAccount(cmd.Context(), args[0]) })
		},
	}
	cmd.AddCommand(add, label, del)
	return cmd
}

func (a *app) podProfiles() *cobra.Command {
	var reset bool
	cmd := &cobra.Command{
		Use:   "profiles NS/NAME PROFILE... | --default",
		Short: "replace the profiles on a pod's WorkloadEndpoint (--default: kns.<ns>, then ksa.<ns>.<sa>)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := lab.ParsePodID(args[0]); err != nil {
				return usageError{err}
			}
			profiles := args[1:]
			switch {
			case reset && len(profiles) > 0:
				return usageError{errors.New("--default or a list of profiles, not both")}
			case !reset && len(profiles) == 0:
				return usageError{errors.New("give the profiles in order (PROFILE...), or --default for the pod's own")}
			case reset:
				profiles = nil
			}
			for _, p := range profiles {
				if err := lab.CheckProfileName(p); err != nil {
					return usageError{err}
				}
			}
			return a.withLab(func(l *lab.Lab) error { return l.SetPodProfiles(cmd.Context(), args[0], profiles) })
		},
	}
	cmd.Flags().BoolVar(&reset, "default", false, "put back the pod's own profiles")
	return cmd
}
