package kernel

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/vm/internal/vmtest"
)

// The shared fixtures (vmtest), under the names the tests use.
var (
	probeStage1    = vmtest.ProbeStage1
	writeBootImage = vmtest.WriteBootImage
	testELF        = vmtest.ELF
)

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents, "nothing cached")
}
