package templatetest

import (
	"fmt"
	"io"
	"os"

	"github.com/causeway/causeway/graph/template"
)

// ValidateFiles validates template files, like `vitrage template validate`:
// for each file it prints "OK" or every problem with its location and
// Vitrage status code. params are the values of the templates'
// parameters, for every file (`--params`). Definition templates among the
// files are loaded first, so that the others may include them. It returns
// how many files were refused; err is only for files that cannot be read.
func ValidateFiles(paths []string, params map[string]string, out io.Writer) (refused int, err error) {
	bodies := make(map[string][]byte, len(paths))
	defs := map[string]*template.Template{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return refused, fmt.Errorf("read template: %w", err)
		}
		bodies[p] = b
		if _, _, typ, err := template.Header(b); err == nil && typ == template.TypeDefinition {
			if t, err := template.Parse(b, template.Options{Params: params}); err == nil {
				defs[t.Name] = t
			}
		}
	}
	opts := template.Options{Params: params, Definitions: func(name string) (*template.Template, bool) {
		t, ok := defs[name]
		return t, ok
	}}
	for _, p := range paths {
		problems := template.Validate(bodies[p], opts)
		if len(problems) == 0 {
			fmt.Fprintf(out, "%s: OK\n", p)
			continue
		}
		refused++
		fmt.Fprintf(out, "%s: %d problem(s)\n", p, len(problems))
		for _, pr := range problems {
			fmt.Fprintf(out, "  %s\n", pr)
		}
	}
	return refused, nil
}
