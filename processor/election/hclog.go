package election

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"reflect"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// slogAdapter makes a *slog.Logger look like the hclog.Logger that raft
// wants, so that raft's logs go through the process logger with the same
// handler, level and format as everything else.
type slogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
	level   hclog.Level
}

var _ hclog.Logger = (*slogAdapter)(nil)

func newHCLogger(l *slog.Logger, name string) hclog.Logger {
	return &slogAdapter{l: l, name: name, level: hclog.Debug}
}

func toSlogLevel(lv hclog.Level) slog.Level {
	switch lv {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *slogAdapter) enabled(lv hclog.Level) bool {
	return lv >= a.level && a.l.Enabled(context.Background(), toSlogLevel(lv))
}

// Log passes msg and its key/value args to slog. hclog's args are the same
// alternating key/value list as slog's, so they are passed through.
func (a *slogAdapter) Log(lv hclog.Level, msg string, args ...any) {
	if lv == hclog.NoLevel {
		lv = hclog.Info
	}
	if lv == hclog.Off || !a.enabled(lv) {
		return
	}
	all := make([]any, 0, len(a.implied)+len(args)+2)
	if a.name != "" {
		all = append(all, "raft_logger", a.name)
	}
	all = append(all, a.implied...)
	all = append(all, args...)
	for i := len(all) - len(a.implied) - len(args) + 1; i < len(all); i += 2 {
		all[i] = stringed(all[i])
	}
	a.l.Log(context.Background(), toSlogLevel(lv), msg, all...)
}

// stringed is v as hclog writes it when v is one of hclog's value types
// (Fmt, Hex...), or a value slog has no form of its own for (KindAny)
// that says itself with a String method: raft logs its *Raft so
// ("entering leader state", "leader", r), a struct with no exported field
// that the JSON handler would write as {}. Numbers, durations, times,
// errors and values that marshal themselves keep slog's form.
func stringed(v any) any {
	switch v := v.(type) {
	case error, json.Marshaler, encoding.TextMarshaler, slog.LogValuer:
		return v
	// hclog's own value types, as hclog renders them (raft writes
	// configurations with hclog.Fmt).
	case hclog.Format:
		if f, ok := firstString(v); ok {
			return fmt.Sprintf(f, v[1:]...)
		}
		return fmt.Sprint(v...)
	case hclog.Hex:
		return "0x" + strconv.FormatUint(uint64(v), 16)
	case hclog.Octal:
		return "0" + strconv.FormatUint(uint64(v), 8)
	case hclog.Binary:
		return "0b" + strconv.FormatUint(uint64(v), 2)
	case hclog.Quote:
		return string(v) // the handler quotes what needs it
	}
	st, ok := v.(fmt.Stringer)
	if !ok || slog.AnyValue(v).Kind() != slog.KindAny {
		return v
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return v
	}
	return st.String()
}

func firstString(f hclog.Format) (string, bool) {
	if len(f) == 0 {
		return "", false
	}
	s, ok := f[0].(string)
	return s, ok
}

func (a *slogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *slogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *slogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *slogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *slogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *slogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *slogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *slogAdapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *slogAdapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *slogAdapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *slogAdapter) ImpliedArgs() []any { return a.implied }

func (a *slogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

func (a *slogAdapter) Name() string { return a.name }

func (a *slogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name == "" {
		c.name = name
	} else {
		c.name = c.name + "." + name
	}
	return &c
}

func (a *slogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

func (a *slogAdapter) SetLevel(lv hclog.Level) { a.level = lv }
func (a *slogAdapter) GetLevel() hclog.Level   { return a.level }

func (a *slogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *slogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := strings.TrimSpace(string(p))
		lv := hclog.Info
		// raft's standard-logger users prefix "[ERR]", "[WARN]", "[DEBUG]".
		switch {
		case strings.HasPrefix(msg, "[ERR"):
			lv = hclog.Error
		case strings.HasPrefix(msg, "[WARN"):
			lv = hclog.Warn
		case strings.HasPrefix(msg, "[DEBUG"), strings.HasPrefix(msg, "[TRACE"):
			lv = hclog.Debug
		}
		a.Log(lv, msg)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// String is for debugging.
func (a *slogAdapter) String() string { return fmt.Sprintf("slogAdapter(%s)", a.name) }
