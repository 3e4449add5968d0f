// Package logtest holds test doubles for log output: a Buffer that a
// logger (or a child process's stdout and stderr) writes to from its own
// goroutines while a test reads it, and a slog Handler that keeps the
// records.
package logtest

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers. The
// zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Handler is a slog.Handler that keeps every record it handles, for a test
// to look at; the attributes of With are not kept. Make it with NewHandler;
// it is safe for concurrent use.
type Handler struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

// NewHandler returns an empty Handler.
func NewHandler() Handler { return Handler{mu: &sync.Mutex{}, recs: new([]slog.Record)} }

// Enabled reports true: every level is kept.
func (h Handler) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns h: the attributes are not kept.
func (h Handler) WithAttrs([]slog.Attr) slog.Handler { return h }

// WithGroup returns h.
func (h Handler) WithGroup(string) slog.Handler { return h }

// Handle keeps r.
func (h Handler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, r.Clone())
	return nil
}

// Count returns how many records kept so far match.
func (h Handler) Count(match func(slog.Record) bool) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range *h.recs {
		if match(r) {
			n++
		}
	}
	return n
}

// Err returns r's "err" attribute, nil when it has none.
func Err(r slog.Record) error {
	var err error
	r.Attrs(func(a slog.Attr) bool {
		if e, ok := a.Value.Any().(error); ok && a.Key == "err" {
			err = e
			return false
		}
		return true
	})
	return err
}
