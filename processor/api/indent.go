package api

import (
	"encoding/json"
	"io"
)

// MaxIndentDepth is the nesting past which WriteJSON indents no further.
// A tree's levels nest two deep each (an object, its children), so a
// topology tree of a dozen levels, deeper than any inventory's, is
// indented in full.
const MaxIndentDepth = 32

// WriteJSON writes v as JSON and a newline, indented by two spaces a
// level as json.Encoder with SetIndent("", "  ") writes it (byte for byte,
// to MaxIndentDepth levels of nesting), but that levels nested deeper are
// indented no further: the indentation of a line is at most
// 2*MaxIndentDepth spaces, so that the size of the answer grows with its
// values, not with the square of its depth (a topology tree of a chain of
// n vertices nests 2n deep). The API answers and the CLI prints with it.
//
// The encoding is indented as it is written to w, a piece at a time,
// rather than copied whole and indented into a second copy: an answer
// takes its compact encoding and the writer's copy, no more.
func WriteJSON(w io.Writer, v any) error {
	in := &indenter{w: w}
	// The encoder writes the compact encoding, and a newline, at once.
	if err := json.NewEncoder(in).Encode(v); err != nil {
		return err
	}
	return in.flush()
}

// indentPiece is the size of the pieces an indenter writes.
const indentPiece = 32 << 10

// indenter writes the compact JSON written to it (as json.Encoder writes
// it) indented as WriteJSON says, to w, in pieces of about indentPiece
// bytes. It is not safe for concurrent use.
type indenter struct {
	w   io.Writer
	buf []byte
	err error
	// depth is the nesting; inString and escaped say where in a string
	// the last byte was; open, that it was a '{' or '[' whose newline waits
	// for the next byte ({} and [] are written so).
	depth             int
	inString, escaped bool
	open              bool
}

func (in *indenter) newline() {
	in.buf = append(in.buf, '\n')
	for range min(in.depth, MaxIndentDepth) {
		in.buf = append(in.buf, ' ', ' ')
	}
}

func (in *indenter) Write(p []byte) (int, error) {
	if in.err != nil {
		return 0, in.err
	}
	for _, c := range p {
		if in.open {
			in.open = false
			if c == '}' || c == ']' {
				in.buf = append(in.buf, c)
				continue
			}
			in.depth++
			in.newline()
		}
		switch {
		case in.inString:
			in.buf = append(in.buf, c)
			switch {
			case in.escaped:
				in.escaped = false
			case c == '\\':
				in.escaped = true
			case c == '"':
				in.inString = false
			}
		case c == '"':
			in.inString = true
			in.buf = append(in.buf, c)
		case c == '{' || c == '[':
			in.buf = append(in.buf, c)
			in.open = true
		case c == '}' || c == ']':
			in.depth--
			in.newline()
			in.buf = append(in.buf, c)
		case c == ',':
			in.buf = append(in.buf, c)
			in.newline()
		case c == ':':
			in.buf = append(in.buf, ':', ' ')
		default:
			in.buf = append(in.buf, c)
		}
		if len(in.buf) >= indentPiece {
			if err := in.flush(); err != nil {
				return 0, err
			}
		}
	}
	return len(p), nil
}

// flush writes what is indented and not written yet.
func (in *indenter) flush() error {
	if in.err == nil && len(in.buf) > 0 {
		_, in.err = in.w.Write(in.buf)
		in.buf = in.buf[:0]
	}
	return in.err
}

// Indenter indents compact JSON written to it as WriteJSON indents an
// answer, writing it to its writer a piece at a time: for JSON written as
// it is rendered, a value at a time (an answer streamed, a list read page
// by page), rather than encoded whole first. What is written must be the
// compact encoding json.Marshal gives (its HTML escaping included) for
// the output to be WriteJSON's byte for byte. Flush writes what is left.
type Indenter struct{ in indenter }

// NewIndenter returns an Indenter writing to w.
func NewIndenter(w io.Writer) *Indenter { return &Indenter{in: indenter{w: w}} }

// Write takes a part of the compact encoding.
func (i *Indenter) Write(p []byte) (int, error) { return i.in.Write(p) }

// Flush writes what is indented and not written yet.
func (i *Indenter) Flush() error { return i.in.flush() }
