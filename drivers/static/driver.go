package static

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/causeway/causeway/drivers/pull"
	"github.com/causeway/causeway/internal/event"
)

// Defaults of Config.
const (
	DefaultSource       = "static"
	DefaultPollInterval = 5 * time.Second
	DefaultSettle       = time.Second
)

// settleTries is how many times a pull reads the files, Settle apart, for
// two reads in a row that agree before it fails with ErrChanging.
const settleTries = 5

// ErrChanging is wrapped by the error of a pull that found the files
// changing at every read (settleTries reads, Settle apart).
var ErrChanging = errors.New("the topology files kept changing while they were read")

// ErrEmpty is wrapped by the error of a pull that found no entity while
// Config.AllowEmpty is off.
var ErrEmpty = errors.New("no entity in the topology files")

// Config configures the static driver.
type Config struct {
	// Source names the datasource in the events (default "static").
	Source string `yaml:"source"`
	// Directory holds the topology files, like Vitrage's
	// /etc/vitrage/static_datasources: every entry whose name ends in
	// .yaml or .yml, in any case (.YAML, .Yml), and does not start with a
	// dot. A symlink is followed. An entry so named that is no regular
	// file (a directory, or a symlink to one) is skipped with a warning
	// at each pull: it holds no topology, and failing the pull on it
	// would keep the whole topology stale.
	Directory string `yaml:"directory"`
	// PollInterval is how often the directory is checked for changes
	// between scheduled pulls (default 5s). A change is pulled once the
	// files have stayed the same for one poll after it (Driver.Watch), so
	// one to two intervals after it was written.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Settle is how long a pull waits to read the files a second time
	// (default 1s). A pull takes what it read only when the second read
	// is the same (names and contents), else reads again, up to five
	// times, and then fails (retried with the schedule's backoff): a file
	// being rewritten in place is not taken half written. A writer that
	// pauses longer than Settle is not waited for; writing a temporary
	// file and renaming it over the old one is safe whatever the timing.
	// It makes every pull, scheduled or after a change, Settle longer, so
	// it must stay well under the schedule's pull_timeout.
	Settle time.Duration `yaml:"settle"`
	// References are the entity types other datasources report (the
	// OpenStack listener's nova.host, nova.instance, ...). An entry of
	// one of them in a topology file only names that entity for the
	// relationships: the static source links to it (a placeholder until
	// its datasource reports it) but never sets its name, state or
	// properties, and never deletes it (Resolve). Empty: the static
	// source owns every entity its files list, as when it is the only
	// datasource of those types. A vertex belongs to the source that
	// reported it last: when references are turned on for entities the
	// static source reported before, those it reported last are deleted
	// at its next full pull, until their own datasource reports them.
	References []string `yaml:"references"`
	// AllowEmpty takes a pull that finds no entity (no topology file, or
	// files listing none) as the topology it is: every entity the static
	// source reported is deleted. Off (the default), such a pull fails
	// and is retried with backoff, the entities kept: an empty directory
	// is far more often a mount that is missing, or a deployment between
	// emptying it and filling it again, than an inventory emptied on
	// purpose.
	AllowEmpty bool `yaml:"allow_empty"`
	// The schedule of full pulls is a drivers.Schedule next to this Config
	// in the wiring: this package does not import package drivers (and its
	// metrics), so the pure template tests of graph/ can import Parse.
}

// Validate reports every problem of c, naming its YAML key.
func (c Config) Validate() error {
	var errs []error
	if c.Directory == "" {
		errs = append(errs, errors.New("directory: is required"))
	}
	if c.PollInterval < 0 {
		errs = append(errs, errors.New("poll_interval: must not be negative"))
	}
	if c.Settle < 0 {
		errs = append(errs, errors.New("settle: must not be negative"))
	}
	if c.Source != "" {
		if err := pull.CheckSource(c.Source); err != nil {
			errs = append(errs, err) // "source: ..."
		}
	}
	seen := map[string]bool{}
	for i, t := range c.References {
		switch {
		case t == "" || checkText(t) != nil:
			errs = append(errs, fmt.Errorf("references[%d]: %q is not an entity type", i, t))
		case seen[t]:
			errs = append(errs, fmt.Errorf("references[%d]: %q is listed twice", i, t))
		}
		seen[t] = true
	}
	return errors.Join(errs...)
}

// Deps are the driver's dependencies.
type Deps struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Driver reads a directory of topology files. It is safe for concurrent use.
type Driver struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg. It starts nothing.
func New(cfg Config, deps Deps) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("static config: %w", err)
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Driver{cfg: cfg, log: log.With("component", "static", "source", cfg.Source)}, nil
}

// Name is the source of the driver's events.
func (d *Driver) Name() string { return d.cfg.Source }

// isTopologyName says whether a directory entry named n is a topology
// file by its name: .yaml or .yml in any case, no dot file.
func isTopologyName(n string) bool {
	if strings.HasPrefix(n, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(n))
	return ext == ".yaml" || ext == ".yml"
}

// files lists the topology files of the directory in name order, and the
// entries named like one that are no regular file (skipped).
func (d *Driver) files() (paths, skipped []string, err error) {
	ents, err := os.ReadDir(d.cfg.Directory)
	if err != nil {
		return nil, nil, fmt.Errorf("read directory %s: %w", d.cfg.Directory, err)
	}
	for _, e := range ents {
		if !isTopologyName(e.Name()) {
			continue
		}
		p := filepath.Join(d.cfg.Directory, e.Name())
		mode := e.Type()
		if mode&os.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				// A dangling link: read fails the pull, naming it, as
				// for a file that cannot be opened.
				paths = append(paths, p)
				continue
			}
			mode = fi.Mode().Type()
		}
		if !mode.IsRegular() {
			skipped = append(skipped, p)
			continue
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	sort.Strings(skipped)
	return paths, skipped, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// file is one topology file as read.
type file struct {
	path string
	data []byte
}

// read reads every topology file of the directory, in name order. warn
// logs the entries skipped (a pull warns, Watch's polls do not).
func (d *Driver) read(ctx context.Context, warn bool) ([]file, error) {
	paths, skipped, err := d.files()
	if err != nil {
		return nil, err
	}
	if warn && len(skipped) > 0 {
		d.log.Warn("skipping entries named like topology files that are no regular file", "paths", skipped)
	}
	out := make([]file, 0, len(paths))
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := readLimited(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, file{p, b})
	}
	return out, nil
}

// changed names a difference between two reads of the directory ("" if
// none): a file added, removed or whose content differs.
func changed(a, b []file) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		switch {
		case i >= len(a):
			return b[i].path + " (appeared)"
		case i >= len(b):
			return a[i].path + " (disappeared)"
		case a[i].path != b[i].path:
			return min(a[i].path, b[i].path) + " (appeared or disappeared)"
		case !bytes.Equal(a[i].data, b[i].data):
			return a[i].path
		}
	}
	return ""
}

// readSettled reads the files until two reads Settle apart agree, and
// returns that content: a file rewritten in place is read in the middle
// of its write only if the writer pauses longer than Settle. After
// settleTries reads without two that agree it fails with ErrChanging.
func (d *Driver) readSettled(ctx context.Context) ([]file, error) {
	last, err := d.read(ctx, true)
	if err != nil {
		return nil, err
	}
	var moved string
	for range settleTries - 1 {
		t := time.NewTimer(d.cfg.Settle)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		cur, err := d.read(ctx, false)
		if err != nil {
			return nil, err
		}
		if moved = changed(last, cur); moved == "" {
			return cur, nil
		}
		last = cur
	}
	return nil, fmt.Errorf("%w: %d reads %v apart, each different from the one before (the last change: %s); "+
		"write a temporary file and rename it over the old one", ErrChanging, settleTries, d.cfg.Settle, moved)
}

// GetAll parses every file and returns their entities (Resolve with the
// configured References). The files are read until two reads Settle apart
// agree (readSettled). One bad
// file fails the whole pull: publishing the others alone would end the sync
// without the bad file's entities and so delete them from the graph.
func (d *Driver) GetAll(ctx context.Context) ([]event.Entity, error) {
	files, err := d.readSettled(ctx)
	if err != nil {
		return nil, err
	}
	tops := make([]*Topology, 0, len(files))
	for _, f := range files {
		t, err := Parse(f.data)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", f.path, err)
		}
		tops = append(tops, t)
	}
	ents, err := Resolve(d.cfg.References, tops...)
	if err != nil {
		return nil, fmt.Errorf("static topology in %s: %w", d.cfg.Directory, err)
	}
	if len(ents) == 0 && !d.cfg.AllowEmpty {
		return nil, fmt.Errorf("static topology in %s (%d topology files): %w: not taken, it would delete every entity "+
			"the static source reported (a mount missing?); set allow_empty: true to empty it on purpose", d.cfg.Directory, len(files), ErrEmpty)
	}
	return ents, nil
}

// fingerprint hashes the names and contents of the directory's files.
func (d *Driver) fingerprint() ([32]byte, error) {
	files, err := d.read(context.Background(), false)
	if err != nil {
		return [32]byte{}, err
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.path, len(f.data))
		h.Write(f.data)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// Watch polls the directory every PollInterval and calls changed once the
// files differ from what an earlier poll saw and have then stayed the same
// for a poll. It returns nil when ctx ends. A directory that cannot be read
// is retried at the next poll (GetAll reports the error).
//
// Why wait for a quiet poll: a file rewritten in place (an editor, scp,
// cp) is written in pieces, and a poll that lands between them sees a
// prefix, which is often valid YAML (cut inside an entity's last value,
// before the relationships). Pulled at once, as the runner pulls on
// changed, it would delete every entity and relationship still to be
// written. A writer that pauses longer than PollInterval is not waited
// for; writing a temporary file and renaming it over the old one is safe
// whatever the timing.
func (d *Driver) Watch(ctx context.Context, changed func()) error {
	last, lastErr := d.fingerprint()
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	settling := false // the files changed at the last poll
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cur, err := d.fingerprint()
		differs := (err == nil) != (lastErr == nil) || (err == nil && cur != last)
		last, lastErr = cur, err
		switch {
		case differs:
			settling = true
		case settling:
			settling = false
			changed()
		}
	}
}
