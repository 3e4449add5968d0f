package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// paramsFlag is --params of `templates validate` and `templates add`: the
// values of the template's parameters, as Vitrage's `template validate|add
// --params key=value ...` gives them. It may be repeated, and one value
// may hold several pairs separated by commas; a pair whose value holds a
// comma is quoted as a CSV field ('"name=High CPU, host"'), as pflag's
// list flags are. A malformed pair, or a name given twice, is refused by
// Set, so that the command line is a usage error (exit 2).
type paramsFlag map[string]string

func (p *paramsFlag) String() string {
	if p == nil || len(*p) == 0 {
		return ""
	}
	pairs := make([]string, 0, len(*p))
	for _, k := range slices.Sorted(maps.Keys(*p)) {
		pairs = append(pairs, k+"="+(*p)[k])
	}
	return strings.Join(pairs, ",")
}

func (p *paramsFlag) Type() string { return "key=value" }

func (p *paramsFlag) Set(v string) error {
	r := csv.NewReader(strings.NewReader(v))
	fields, err := r.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("no key=value pair")
	}
	if err != nil {
		return fmt.Errorf("not a comma-separated list of key=value pairs: %w", err)
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return errors.New("not one line of key=value pairs")
	}
	if *p == nil {
		*p = paramsFlag{}
	}
	for _, f := range fields {
		k, val, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", f)
		}
		if _, dup := (*p)[k]; dup {
			return fmt.Errorf("parameter %q given twice", k)
		}
		(*p)[k] = val
	}
	return nil
}

// paramsUsage is the help of --params.
const paramsUsage = "a value for a parameter of the template (get_param), as key=value; repeat it, or separate pairs with commas"
