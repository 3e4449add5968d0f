// Command benchreport turns the output of `go test -bench` over the whole
// module into the report of `make bench`: it copies its input to stdout as it
// arrives, then prints every benchmark's figures grouped by package, and the
// ratio of each measurement to the raw baseline measured beside it in the
// same run (sub-benchmarks named raw*, baseline*, or gonum-simple*).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() { os.Exit(run(os.Stdin, os.Stdout)) }

type result struct {
	pkg, name string
	metrics   map[string]float64
	units     []string
}

func run(in io.Reader, out io.Writer) int {
	results, skipped, failed, err := parse(in, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		return 1
	}
	report(out, results)
	if len(skipped) > 0 {
		// A skipped benchmark has no figures; said here, not left out.
		fmt.Fprintf(out, "\n%d benchmarks SKIPPED (no figures; see above for why):\n", len(skipped))
		for _, r := range skipped {
			fmt.Fprintf(out, "  %s: %s\n", strings.TrimPrefix(r.pkg, "github.com/causeway/causeway/"), r.name)
		}
	}
	if failed {
		fmt.Fprintln(out, "\nSome benchmark packages FAILED: see above.")
		return 1
	}
	return 0
}

// parse reads go test -bench output, echoing it, and collects the results
// and the benchmarks that skipped (by package and name, without figures).
func parse(in io.Reader, echo io.Writer) (results, skipped []result, failed bool, err error) {
	pkg := ""
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "FAIL"), strings.HasPrefix(line, "--- FAIL"):
			failed = true
		case strings.HasPrefix(strings.TrimSpace(line), "--- SKIP: Benchmark"):
			name := strings.TrimPrefix(strings.TrimSpace(line), "--- SKIP: Benchmark")
			name, _, _ = strings.Cut(name, " ") // drop " (0.00s)"
			skipped = append(skipped, result{pkg: pkg, name: name})
		case strings.HasPrefix(line, "Benchmark"):
			if r, ok := parseLine(pkg, line); ok {
				results = append(results, r)
			}
		}
	}
	return results, skipped, failed, sc.Err()
}

// parseLine reads "BenchmarkX/sub-8  N  v1 unit1  v2 unit2 ...".
func parseLine(pkg, line string) (result, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || len(f)%2 != 0 {
		return result{}, false
	}
	if _, err := strconv.Atoi(f[1]); err != nil {
		return result{}, false
	}
	name := f[0]
	if i := strings.LastIndex(name, "-"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i] // drop the GOMAXPROCS suffix
		}
	}
	r := result{pkg: pkg, name: strings.TrimPrefix(name, "Benchmark"), metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return result{}, false
		}
		r.metrics[f[i+1]] = v
		r.units = append(r.units, f[i+1])
	}
	return r, true
}

func isBaseline(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, "raw") || strings.HasPrefix(seg, "baseline") || strings.HasPrefix(seg, "gonum-simple") {
			return true
		}
	}
	return false
}

// sameSize reports whether two results of a family were measured at the
// same size: every position where both names hold a size (a number, or
// key=number) holds the same one. Memory/causeway/1000 pairs with
// Memory/gonum-simple/1000, not with Memory/gonum-simple/100000.
func sameSize(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := range min(len(as), len(bs)) {
		ka, na, oka := size(as[i])
		kb, nb, okb := size(bs[i])
		if oka && okb && ka == kb && na != nb {
			return false
		}
	}
	return true
}

// size splits a name segment "1000" or "entities=1000" into its key ("" or
// "entities") and number.
func size(seg string) (key, n string, ok bool) {
	key, n, found := strings.Cut(seg, "=")
	if !found {
		key, n = "", seg
	}
	if _, err := strconv.ParseFloat(n, 64); err != nil {
		return "", "", false
	}
	return key, n, true
}

func family(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

func report(out io.Writer, results []result) {
	fmt.Fprintln(out, "\n================ Causeway benchmark report ================")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	pkg := ""
	for _, r := range results {
		if r.pkg != pkg {
			pkg = r.pkg
			fmt.Fprintf(tw, "\n%s\n", strings.TrimPrefix(pkg, "github.com/causeway/causeway/"))
		}
		var cols []string
		for _, u := range r.units {
			cols = append(cols, fmt.Sprintf("%s %s", format(r.metrics[u]), u))
		}
		fmt.Fprintf(tw, "  %s\t%s\n", r.name, strings.Join(cols, "\t"))
	}
	tw.Flush()

	fmt.Fprintln(out, "\nRatios to the raw baseline measured in the same run:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	n := 0
	for _, base := range results {
		if !isBaseline(base.name) {
			continue
		}
		for _, r := range results {
			if r.pkg != base.pkg || family(r.name) != family(base.name) || isBaseline(r.name) || !sameSize(r.name, base.name) {
				continue
			}
			if ru, bu, ok := rates(r, base); ok {
				fmt.Fprintf(tw, "  %s\t%s / %s\t%s / %s\t%s\n", strings.TrimPrefix(r.pkg, "github.com/causeway/causeway/"),
					r.name, base.name, ru, bu, format(r.metrics[ru]/base.metrics[bu]))
				n++
			}
			units := shared(base, r)
			for _, u := range units {
				fmt.Fprintf(tw, "  %s\t%s / %s\t%s\t%s\n", strings.TrimPrefix(r.pkg, "github.com/causeway/causeway/"),
					r.name, base.name, u, format(r.metrics[u]/base.metrics[u]))
				n++
			}
		}
	}
	tw.Flush()
	if n == 0 {
		fmt.Fprintln(out, "  (no benchmark with a raw baseline ran)")
	}
}

// rates pairs the first throughput (a unit ending in /s) of r and of base
// when their names differ (events/s against rows/s): the shared units are
// compared by shared.
func rates(r, base result) (string, string, bool) {
	first := func(x result) string {
		for _, u := range x.units {
			if strings.HasSuffix(u, "/s") {
				return u
			}
		}
		return ""
	}
	ru, bu := first(r), first(base)
	if ru == "" || bu == "" || ru == bu || base.metrics[bu] == 0 {
		return "", "", false
	}
	return ru, bu, true
}

// shared lists the units both results report, rates and sizes first.
func shared(a, b result) []string {
	var us []string
	for _, u := range a.units {
		if _, ok := b.metrics[u]; ok && a.metrics[u] != 0 && u != "allocs/op" && u != "ns/op" {
			us = append(us, u)
		}
	}
	sort.SliceStable(us, func(i, j int) bool { return strings.HasSuffix(us[i], "/s") && !strings.HasSuffix(us[j], "/s") })
	return us
}

func format(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
