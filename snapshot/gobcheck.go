package snapshot

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
)

// The gob encodings (NodeGob, EngineGob) are a legacy read path: snapshots
// written by earlier builds, or on request (Config.Encoding "gob"). gob is
// not made for bytes it did not write: a map's count is a size hint that
// it allocates before reading a single entry (reflect.MakeMapWithSize), so
// a few corrupt bytes can claim a map of 2^40 entries and take the
// process's memory — which no recover catches. decodeGob therefore reads
// the payload (at most maxGobPayload bytes), walks it with checkGob, which
// refuses every count larger than the bytes left to hold its elements,
// and only then hands it to gob, recovering a panic as ErrCorrupt.

// maxGobPayload bounds a gob snapshot's payload; gob itself refuses
// messages over 1 GiB. A gob state of 100k vertices is about 25 MB.
const maxGobPayload = 1 << 30

// maxGobDepth bounds how deep checkGob follows nested values (the
// snapshot's states nest a few levels; a recursive wire type could nest
// as deep as the bytes go, and exhaust the stack).
const maxGobDepth = 1000

// decodeGob decodes one gob value of payload into v, bounded as the note
// above says.
func decodeGob(payload io.Reader, v any) (err error) {
	data, err := io.ReadAll(io.LimitReader(payload, maxGobPayload+1))
	if err != nil {
		return err
	}
	if len(data) > maxGobPayload {
		return fmt.Errorf("%w: gob payload over %d bytes", ErrCorrupt, maxGobPayload)
	}
	if err := checkGob(data); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: gob decoder panicked: %v", ErrCorrupt, r)
		}
	}()
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// Builtin gob type ids (encoding/gob/type.go); user types start at 64.
const (
	gobBool      = 1
	gobInt       = 2
	gobUint      = 3
	gobFloat     = 4
	gobBytes     = 5
	gobString    = 6
	gobComplex   = 7
	gobInterface = 8
	gobFirstUser = 64
)

type gobKind uint8

const (
	gobArray gobKind = iota + 1
	gobSlice
	gobStruct
	gobMap
	gobOpaque // GobEncoder, BinaryMarshaler, TextMarshaler: a byte string
)

type gobWireType struct {
	kind      gobKind
	elem, key int64
	fields    []int64
}

// gobCursor reads one message.
type gobCursor struct{ b []byte }

var errGobShort = errors.New("gob: message ends early")

func (c *gobCursor) uint() (uint64, error) {
	if len(c.b) == 0 {
		return 0, errGobShort
	}
	b := c.b[0]
	c.b = c.b[1:]
	if b < 0x80 {
		return uint64(b), nil
	}
	n := -int(int8(b))
	if n > 8 || n > len(c.b) {
		return 0, fmt.Errorf("gob: bad uint of %d bytes", n)
	}
	var u uint64
	for _, x := range c.b[:n] {
		u = u<<8 | uint64(x)
	}
	c.b = c.b[n:]
	return u, nil
}

func (c *gobCursor) int() (int64, error) {
	u, err := c.uint()
	if u&1 != 0 {
		return ^int64(u >> 1), err
	}
	return int64(u >> 1), err
}

// count reads a count of elements each at least per bytes long, and
// refuses one the rest of the message cannot hold.
func (c *gobCursor) count(per uint64) (uint64, error) {
	n, err := c.uint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(c.b))/per {
		return 0, fmt.Errorf("gob: count %d, with %d bytes left", n, len(c.b))
	}
	return n, nil
}

func (c *gobCursor) skipString() error {
	n, err := c.count(1)
	c.b = c.b[n:]
	return err
}

// fields reads a struct's (field delta, value) pairs, calling f with each
// field's index, up to the terminating zero delta.
func (c *gobCursor) fields(f func(i int) error) error {
	i := -1
	for {
		d, err := c.uint()
		if err != nil {
			return err
		}
		if d == 0 {
			return nil
		}
		if d > 1<<16 || i+int(d) > 1<<16 {
			return fmt.Errorf("gob: field delta %d", d)
		}
		i += int(d)
		if err := f(i); err != nil {
			return err
		}
	}
}

// checkGob walks the gob stream in data up to and through its first value
// and refuses it when a count exceeds what its message can hold, a type
// is unknown, or values nest deeper than maxGobDepth.
func checkGob(data []byte) error {
	types := map[int64]*gobWireType{}
	in := gobCursor{b: data}
	for {
		if len(in.b) == 0 {
			return errors.New("gob: no value")
		}
		n, err := in.count(1)
		if err != nil {
			return err
		}
		msg := gobCursor{b: in.b[:n]}
		in.b = in.b[n:]
		id, err := msg.int()
		if err != nil {
			return err
		}
		if id < 0 {
			if -id < gobFirstUser {
				return fmt.Errorf("gob: definition of builtin type %d", -id)
			}
			wt, err := msg.wireType()
			if err != nil {
				return fmt.Errorf("gob: definition of type %d: %w", -id, err)
			}
			types[-id] = wt
			continue
		}
		w := gobWalker{types: types}
		if t := types[id]; t == nil || t.kind != gobStruct {
			// A top-level value that is not a struct follows a zero delta.
			if d, err := msg.uint(); err != nil || d != 0 {
				return fmt.Errorf("gob: bad singleton (%d, %v)", d, err)
			}
		}
		return w.value(&msg, id, 0)
	}
}

// wireType reads a type definition (gob's wireType struct).
func (c *gobCursor) wireType() (*gobWireType, error) {
	var wt *gobWireType
	common := func() error { // CommonType{Name string; Id typeId}
		return c.fields(func(i int) error {
			switch i {
			case 0:
				return c.skipString()
			case 1:
				_, err := c.int()
				return err
			}
			return fmt.Errorf("gob: CommonType field %d", i)
		})
	}
	// typeIDs reads a type of CommonType then ints (its typeIds, an
	// array's Len), each into its dst (nil: read and dropped).
	typeIDs := func(name string, dst ...*int64) error {
		return c.fields(func(j int) error {
			if j == 0 {
				return common()
			}
			if j > len(dst) {
				return fmt.Errorf("gob: %s field %d", name, j)
			}
			n, err := c.int()
			if dst[j-1] != nil {
				*dst[j-1] = n
			}
			return err
		})
	}
	err := c.fields(func(i int) error {
		if wt != nil {
			return errors.New("gob: two kinds in one type")
		}
		wt = &gobWireType{}
		var err error
		switch i {
		case 0: // arrayType{CommonType; Elem typeId; Len int}
			wt.kind = gobArray
			err = typeIDs("arrayType", &wt.elem, nil)
		case 1: // sliceType{CommonType; Elem typeId}
			wt.kind = gobSlice
			err = typeIDs("sliceType", &wt.elem)
		case 2: // structType{CommonType; Field []fieldType{Name string; Id typeId}}
			wt.kind = gobStruct
			err = c.fields(func(j int) error {
				switch j {
				case 0:
					return common()
				case 1:
					n, err := c.count(1)
					if err != nil {
						return err
					}
					for range n {
						if err := c.fields(func(k int) error {
							switch k {
							case 0:
								return c.skipString()
							case 1:
								id, err := c.int()
								wt.fields = append(wt.fields, id)
								return err
							}
							return fmt.Errorf("gob: fieldType field %d", k)
						}); err != nil {
							return err
						}
					}
					return nil
				}
				return fmt.Errorf("gob: structType field %d", j)
			})
		case 3: // mapType{CommonType; Key, Elem typeId}
			wt.kind = gobMap
			err = typeIDs("mapType", &wt.key, &wt.elem)
		case 4, 5, 6: // gobEncoderType{CommonType}
			wt.kind = gobOpaque
			err = typeIDs("gobEncoderType")
		default:
			err = fmt.Errorf("gob: wireType field %d", i)
		}
		return err
	})
	if err == nil && wt == nil {
		err = errors.New("gob: empty type definition")
	}
	return wt, err
}

type gobWalker struct{ types map[int64]*gobWireType }

func (w *gobWalker) value(c *gobCursor, id int64, depth int) error {
	if depth > maxGobDepth {
		return fmt.Errorf("gob: values nested over %d deep", maxGobDepth)
	}
	switch id {
	case gobBool, gobInt, gobUint, gobFloat:
		_, err := c.uint()
		return err
	case gobComplex:
		if _, err := c.uint(); err != nil {
			return err
		}
		_, err := c.uint()
		return err
	case gobBytes, gobString:
		return c.skipString()
	case gobInterface:
		return errors.New("gob: interface values are not in snapshots")
	}
	t := w.types[id]
	if t == nil {
		return fmt.Errorf("gob: unknown type %d", id)
	}
	switch t.kind {
	case gobOpaque:
		return c.skipString()
	case gobArray, gobSlice:
		n, err := c.count(1)
		if err != nil {
			return err
		}
		for range n {
			if err := w.value(c, t.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case gobMap:
		n, err := c.count(2)
		if err != nil {
			return err
		}
		for range n {
			if err := w.value(c, t.key, depth+1); err != nil {
				return err
			}
			if err := w.value(c, t.elem, depth+1); err != nil {
				return err
			}
		}
		return nil
	case gobStruct:
		return c.fields(func(i int) error {
			if i >= len(t.fields) {
				return fmt.Errorf("gob: field %d of a struct of %d", i, len(t.fields))
			}
			return w.value(c, t.fields[i], depth+1)
		})
	}
	return fmt.Errorf("gob: type %d of no kind", id)
}
