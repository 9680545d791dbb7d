package lazy

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
)

// A layer's entries are kept in the cache in gob, a compact binary
// encoding that decodes several times faster than the JSON it replaces:
// a warm build opens every layer's index, and parsing a large layer's
// JSON (an eStargz TOC, or the index of a layer read whole) was most of
// what a warm open cost. The record starts with a line naming the format
// and the SHA-256 of the rest, so that a damaged or foreign file is
// refused (and the index built again) rather than decoded.

// binIndexMagic names the format; a change to what is encoded changes it.
const binIndexMagic = "nanofs-bin-index-v1 "

// binIndexSuffix is the cache suffix of binary indexes.
const binIndexSuffix = ".idx"

// encodeBinIndex encodes v (a struct of exported fields) as a record.
func encodeBinIndex(v any) ([]byte, error) {
	var body bytes.Buffer
	if err := gob.NewEncoder(&body).Encode(v); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body.Bytes())
	head := binIndexMagic + hex.EncodeToString(sum[:]) + "\n"
	return append([]byte(head), body.Bytes()...), nil
}

var errBinIndex = errors.New("cached binary index is damaged or of another version")

// decodeBinIndex checks a record written by encodeBinIndex and decodes it
// into v.
func decodeBinIndex(raw []byte, v any) error {
	line, body, ok := bytes.Cut(raw, []byte("\n"))
	if !ok {
		return errBinIndex
	}
	sum := sha256.Sum256(body)
	if string(line) != binIndexMagic+hex.EncodeToString(sum[:]) {
		return errBinIndex
	}
	if err := gob.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errBinIndex, err)
	}
	return nil
}
