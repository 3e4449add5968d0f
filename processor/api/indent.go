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
func WriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	out := appendIndented(make([]byte, 0, len(b)+len(b)/2), b)
	_, err = w.Write(append(out, '\n'))
	return err
}

// appendIndented appends src, compact JSON (as json.Marshal writes it),
// indented as WriteJSON says, to dst.
func appendIndented(dst, src []byte) []byte {
	depth := 0
	newline := func() {
		dst = append(dst, '\n')
		for range min(depth, MaxIndentDepth) {
			dst = append(dst, ' ', ' ')
		}
	}
	inString, escaped := false, false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			dst = append(dst, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			dst = append(dst, c)
		case '{', '[':
			dst = append(dst, c)
			if i+1 < len(src) && (src[i+1] == '}' || src[i+1] == ']') {
				// Empty: {} and [], as json.Indent writes them.
				dst = append(dst, src[i+1])
				i++
				continue
			}
			depth++
			newline()
		case '}', ']':
			depth--
			newline()
			dst = append(dst, c)
		case ',':
			dst = append(dst, c)
			newline()
		case ':':
			dst = append(dst, ':', ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
