package tfs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFreeSpace(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "4KiB": 4096, "1M": 1 << 20, "2GiB": 2 << 30, "3MB": 3 << 20, "10B": 10} {
		got, err := ParseFreeSpace(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "1TiB", "x", "99999999999G"} {
		_, err := ParseFreeSpace(in)
		assert.Error(t, err, in)
	}
}

func TestParseEnv(t *testing.T) {
	env, err := ParseEnv([]string{"HOME=/", "EQ=a=b", "E=", "HOME=/root"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"HOME": "/root", "EQ": "a=b", "E": ""}, env)
	for _, bad := range []string{"NOEQUALS", "=v"} {
		_, err := ParseEnv([]string{bad})
		assert.ErrorContains(t, err, "want NAME=VALUE", bad)
	}
}
