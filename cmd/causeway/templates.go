package main

import (
	"fmt"

	"github.com/causeway/causeway/graph/templatetest"
	"github.com/spf13/cobra"
)

// newTemplatesCmd groups the template commands: validate and test work on
// local files, in-process; list, show, add and delete talk to a processor.
func newTemplatesCmd(_ *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "templates", Short: "Validate, test and manage scenario templates (Vitrage v2/v3)"}
	var params paramsFlag
	validate := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Validate template files; report every problem with its location (exit 1 if any is refused)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			refused, err := templatetest.ValidateFiles(files, params, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if refused > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d of %d templates refused", refused, len(files))}
			}
			return nil
		},
	}
	validate.Flags().Var(&params, "params", paramsUsage+" (for every file)")
	test := &cobra.Command{
		Use:   "test SPEC...",
		Short: "Run template unit tests (topology + timeline + expectations), in-process",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, specs []string) error {
			res, err := templatetest.Run(cmd.Context(), specs, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !res.OK() {
				return &exitError{code: 1, msg: "template tests failed"}
			}
			return nil
		},
	}
	cmd.AddCommand(validate, test)
	// Only the commands that ask a processor take --url, --token and -o.
	f := &apiFlags{}
	api := templatesAPICmds(f)
	f.register(api...)
	cmd.AddCommand(api...)
	return cmd
}
