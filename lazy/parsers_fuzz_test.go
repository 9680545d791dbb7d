package lazy

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/containerd/stargz-snapshotter/estargz"

	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// FuzzManifestPosition: any annotation value is parsed or refused, and
// what is accepted is a usable manifest position.
func FuzzManifestPosition(f *testing.F) {
	for _, s := range []string{"1000:200:800:1", "8:1:0:1", "1:2:3", "1:2:3:2", "-1:2:3:1", "a:b:c:d", "", "1:0:0:1", "9223372036854775807:1:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		off, length, usize, err := parseManifestPosition(s)
		if err != nil {
			return
		}
		if off < 0 || length <= 0 || usize < 0 {
			t.Fatalf("%q accepted as %d:%d:%d", s, off, length, usize)
		}
	})
}

// FuzzZstdChunkedTOC: any TOC JSON is converted or refused, never with a
// panic, and every chunk accepted lies before the TOC and inside its
// member.
func FuzzZstdChunkedTOC(f *testing.F) {
	f.Add([]byte(`{"version":1,"entries":[{"type":"dir","name":"a/"},{"type":"reg","name":"a/f","size":3,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","offset":10,"endOffset":20,"chunkDigest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}`), int64(100))
	f.Add([]byte(`{"entries":[{"type":"reg","name":"f","size":8,"offset":10,"endOffset":5,"chunkSize":4,"chunkDigest":"sha256:00"},{"type":"chunk","name":"f","offset":30,"chunkOffset":4,"chunkSize":4}]}`), int64(50))
	f.Add([]byte(`{}`), int64(0))
	f.Fuzz(func(t *testing.T, tocJSON []byte, tocOffset int64) {
		entries, err := zstdChunkedEntries(tocJSON, tocOffset)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, c := range e.Chunks {
				if c.Offset <= 0 || c.Next <= c.Offset || c.Next > tocOffset {
					t.Fatalf("%s: chunk %+v outside the blob before the TOC at %d", e.Name, c, tocOffset)
				}
			}
		}
	})
}

// FuzzBinIndex: a damaged or foreign cached index is refused, never
// decoded into entries that were not checked.
func FuzzBinIndex(f *testing.F) {
	good, err := encodeBinIndex(&tocEntries{TOCDigest: "sha256:x", TOCOffset: 10, BlobSize: 20,
		Entries: []overlay.Entry{{Name: "a", Path: "a", Type: '0', Size: 1, Chunks: []overlay.Chunk{{Size: 1, Offset: 1, Next: 2}}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(binIndexMagic + "00\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var te tocEntries
		_ = decodeBinIndex(raw, &te)
	})
}

// FuzzDecodeTOC: decodeTOC never panics, and a TOC as a writer spells it
// (what encoding/json makes of the input, marshalled again) decodes to
// what encoding/json (the oracle) reads.
func FuzzDecodeTOC(f *testing.F) {
	f.Add([]byte(`{"version":1,"entries":[{"type":"dir","name":"a/","modtime":"2020-01-02T03:04:05Z","mode":493},{"type":"reg","name":"a/f","size":3,"digest":"sha256:00","offset":10,"chunkDigest":"sha256:00","xattrs":{"user.a":"Yg=="}}]}`))
	f.Add([]byte(`{"entries":[{"type":"symlink","name":"l","linkName":"a/f","uid":1,"gid":2,"userName":"u","NumLink":1}]}`))
	f.Add([]byte(`{"entries":[{"name":"\u00e9\ud800","size":-1}],"extra":[1,2,{"x":null}]}`))
	f.Add([]byte(`{"entries":[{"name":"a","modtime":"yesterday"}]}`))
	f.Add([]byte(`{"entries":[{"name":"a","size":1e3}]}`))
	f.Add([]byte(`{"entries":[{"NAme":"0"}]}`))
	f.Add([]byte(`{"entries":null}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got estargz.JTOC
		_ = decodeTOC(data, &got)
		var want estargz.JTOC
		if json.Unmarshal(data, &want) != nil {
			return
		}
		canon, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		var again, oracle estargz.JTOC
		if err := decodeTOC(canon, &again); err != nil {
			t.Fatalf("decodeTOC(%s): %v", canon, err)
		}
		if err := json.Unmarshal(canon, &oracle); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, oracle) {
			t.Fatalf("%s: decodeTOC %+v, encoding/json %+v", canon, again, oracle)
		}
	})
}
