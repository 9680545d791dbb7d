package lazy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExpansionBound(t *testing.T) {
	e := expansionLimit{ratio: 100, max: 32 << 30}
	tests := []struct {
		name       string
		compressed int64
		want       int64
	}{
		{"small layer: the slack", 1000, 100*1000 + expansionSlack},
		{"19 MB gzip: far below 4.3 GB", 19 << 20, 100*(19<<20) + expansionSlack},
		{"huge layer: the absolute bound", 1 << 30, 32 << 30},
		{"unknown size: the absolute bound", -1, 32 << 30},
		{"overflowing product: the absolute bound", 1 << 62, 32 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, e.bound(tt.compressed))
		})
	}
	assert.Less(t, e.bound(19<<20), int64(4300)<<20, "the probe's bomb is caught")
}
