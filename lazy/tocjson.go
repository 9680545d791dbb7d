package lazy

import (
	"encoding/json"
	"reflect"

	gojson "github.com/goccy/go-json"
)

// decodeTOC decodes a table of contents (eStargz or zstd:chunked JSON,
// verified against its digest) into v, a pointer. goccy/go-json does it
// about five times as fast as encoding/json (BenchmarkDecodeTOC): a cold
// open parses megabytes of it before anything else can happen. On input it
// rejects, or panics on, encoding/json decides again from a zero value and
// words the error. goccy takes keys spelled as writers spell them (the
// struct tags; encoding/json takes any case), and skips the values of keys
// v has no place for without checking them (checking costs what it
// saves): a TOC as a writer makes it decodes as with encoding/json
// (FuzzDecodeTOC). A TOC has been checked against the digest its manifest
// gives before it is decoded.
func decodeTOC(data []byte, v any) (err error) {
	std := func() error {
		reflect.ValueOf(v).Elem().SetZero()
		return json.Unmarshal(data, v)
	}
	defer func() {
		if recover() != nil {
			err = std()
		}
	}()
	if gojson.Unmarshal(data, v) == nil {
		return nil
	}
	return std()
}
