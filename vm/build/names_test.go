package build

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDefaultPackageName(t *testing.T) {
	for ref, want := range map[string]string{
		"node:16.3.0":                       "node_16.3.0",
		"node":                              "node_latest",
		"localhost:5000/team/app:1.2":       "app_1.2",
		"gcr.io/distroless/static-debian12": "static-debian12_latest",
		"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef": "app_0123456789ab",
	} {
		assert.Equal(t, want, DefaultPackageName(ref), ref)
	}
}
