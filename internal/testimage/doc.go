// Package testimage builds the real OCI images every nanofs test reads:
// layers from host trees and from exact entry lists, each in gzip, zstd and
// eStargz; a catalog of named images (C fixtures, edge cases, Debian with
// node, distroless); real registries to push them to (Debian's
// docker-registry, go-containerregistry's in-process one); a counting,
// fault-injecting proxy; OCI layout and docker-save tarball writers; and
// the tree an image should show, computed from its inputs.
package testimage
