// Package artifact keeps built unikernels in an OCI registry, next to the
// images they were built from: Write pushes a disk (or an ops package) as
// an artifact manifest (artifactType ArtifactType) whose subject is the
// source image's manifest and whose annotations say what built it,
// including the build-inputs digest; Find looks among a source image's
// referrers for an artifact built from the same inputs (through the
// Referrers API, or the referrers tag sha256-HEX on registries without
// it); Pull fetches an artifact's disk. Everything goes through
// go-containerregistry; nothing here knows how a disk is built.
package artifact
