package disk

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCHS(t *testing.T) {
	// Expected triples worked out by hand from spec §2.2:
	// s = offset/512, cyl = s/(63*255), head = (s/63)%255, sec = s%63+1,
	// bytes = head, (cyl>>8)|sec, cyl&0xff.
	tests := []struct {
		offset int64
		want   [3]byte
	}{
		{0, [3]byte{0, 1, 0}},
		{9 * 512, [3]byte{0, 10, 0}},                // virt stub: first partition at LBA 9
		{25 * 512, [3]byte{0, 26, 0}},               // LBA 25
		{24600 * 512, [3]byte{135, 31, 1}},          // cyl 1, 24600 = 63*390 + 30
		{16065 * 256 * 512, [3]byte{0, 1, 0}},       // cyl 256: its high bits OR-ed unshifted (1|1)
		{16065 * 1024 * 512, [3]byte{254, 63, 255}}, // past cylinder 1023: clamped
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, chs(tt.offset), "offset %d", tt.offset)
	}
}

func TestMBRSectorRejects(t *testing.T) {
	var base [512]byte
	_, err := mbrSector(base, partition{start: 100, size: 512})
	require.ErrorContains(t, err, "whole sectors")
	_, err = mbrSector(base, partition{start: 512, size: 2 << 40})
	require.ErrorContains(t, err, "2 TiB")
	_, err = mbrSector(base, partition{}, partition{}, partition{}, partition{}, partition{})
	require.ErrorContains(t, err, "holds 4")
}
