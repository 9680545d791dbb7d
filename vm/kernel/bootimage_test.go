package kernel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBootImage(t *testing.T) {
	good := func() []byte {
		b := make([]byte, 512+4*512)
		binary.LittleEndian.PutUint64(b[0x1AA:], 0x8000)
		binary.LittleEndian.PutUint64(b[0x1B2:], 4*512)
		binary.LittleEndian.PutUint32(b[0x1BA:], 12)
		b[510], b[511] = 0x55, 0xAA
		return b
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		err    string
	}{
		{"valid", func(b []byte) []byte { return b }, ""},
		{"short", func(b []byte) []byte { return b[:100] }, "shorter than a boot sector"},
		{"no signature", func(b []byte) []byte { b[511] = 0; return b }, "55 AA"},
		{"wrong record type", func(b []byte) []byte { b[0x1BA] = 11; return b }, "type 11"},
		{"wrong base", func(b []byte) []byte { b[0x1AB] = 0x90; return b }, "base"},
		{"stage2 not in sectors", func(b []byte) []byte { b[0x1B2] = 1; return b }, "multiple of 512"},
		{"stage2 zero", func(b []byte) []byte { clear(b[0x1B2:0x1BA]); return b }, "non-zero"},
		{"stage2 huge", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[0x1B2:], 1<<40); return b }, "below"},
		{"truncated stage2", func(b []byte) []byte { return b[:len(b)-512] }, "says 512 + 2048"},
		{"trailing bytes", func(b []byte) []byte { return append(b, make([]byte, 512)...) }, "says 512 + 2048"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(good())
			img, err := parseBootImage(bytes.NewReader(b), int64(len(b)))
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.EqualValues(t, 2048, img.Stage2)
			assert.EqualValues(t, 512+2048+4096, img.FirstPartition())
		})
	}
}

func FuzzParseBootImage(f *testing.F) {
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint64(b[0x1AA:], 0x8000)
	binary.LittleEndian.PutUint64(b[0x1B2:], 512)
	binary.LittleEndian.PutUint32(b[0x1BA:], 12)
	b[510], b[511] = 0x55, 0xAA
	f.Add(b)
	f.Add(b[:512])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := parseBootImage(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		// Whatever is accepted is self-consistent.
		if img.Stage2 <= 0 || img.Stage2%512 != 0 || int64(len(data)) != 512+img.Stage2 {
			t.Fatalf("accepted inconsistent boot image: stage2 %d, %d bytes", img.Stage2, len(data))
		}
		if !bytes.Equal(img.Sector0[:], data[:512]) {
			t.Fatal("sector 0 not kept verbatim")
		}
	})
}
