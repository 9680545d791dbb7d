package tfs

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Value is a value of the TFS metadata language: one of String, Int, Uint,
// Flag, Buffer, Vector or Tuple. Root manifest keys (spec §7) are set with
// these, and FS.Manifest returns them.
type Value interface {
	tfsValue()
}

// String is a typed string (v5 tag 4): program paths, arguments, environment
// values, most manifest settings.
type String string

// Int is a signed integer (v5 tag 3).
type Int int64

// Uint is a non-negative integer too large for Int; the reader returns it
// only for values above math.MaxInt64 (for example kernel-written mtimes
// after 2038).
type Uint uint64

// Flag is the null value: an attribute that is present but empty. Kernel
// flags such as debug_exit or readonly_rootfs are "present ⇒ on".
type Flag struct{}

// Buffer is an untyped byte string. Version 4 volumes store every scalar this
// way; the v5 writer refuses to emit it (spec §9 item 5).
type Buffer []byte

// Vector is an ordered list (v5 tag 2), for example the argument vector.
type Vector []Value

// Tuple maps symbols to values (v5 tag 1). The writer encodes its keys in
// byte order, so a Tuple built from a Go map still encodes deterministically.
type Tuple map[string]Value

func (String) tfsValue() {}
func (Int) tfsValue()    {}
func (Uint) tfsValue()   {}
func (Flag) tfsValue()   {}
func (Buffer) tfsValue() {}
func (Vector) tfsValue() {}
func (Tuple) tfsValue()  {}

// MarshalJSON renders a flag as true: flags mean "present ⇒ on".
func (Flag) MarshalJSON() ([]byte, error) { return []byte("true"), nil }

// MarshalJSON renders a buffer as a JSON string rather than base64, since
// v4 buffers are text (decimal numbers, paths).
func (b Buffer) MarshalJSON() ([]byte, error) { return json.Marshal(string(b)) }

// Strings builds a vector of strings, the form of the arguments key.
func Strings(s ...string) Vector {
	v := make(Vector, len(s))
	for i, x := range s {
		v[i] = String(x)
	}
	return v
}

// sortedKeys returns the keys of t in byte order.
func sortedKeys[V any](t map[string]V) []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkWritable reports whether v may be written to a v5 log: no untyped
// buffers (spec §9 item 5), no nil values, no empty keys.
func checkWritable(v Value) error {
	switch v := v.(type) {
	case String, Int, Uint, Flag:
		return nil
	case Buffer:
		return fmt.Errorf("untyped buffer values are not allowed in a v5 log; use String")
	case Vector:
		for i, e := range v {
			if err := checkWritable(e); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
		return nil
	case Tuple:
		for _, k := range sortedKeys(v) {
			if err := checkSymbol(k); err != nil {
				return err
			}
			if err := checkWritable(v[k]); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
		return nil
	case nil:
		return fmt.Errorf("nil value")
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
}

// checkSymbol validates an attribute name.
func checkSymbol(k string) error {
	if k == "" {
		return fmt.Errorf("empty attribute name")
	}
	return nil
}
