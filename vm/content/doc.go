// Package content owns the local files a build adds to an image: add
// specs (SRC[:DST]), an ops config's Files, Dirs and MapDirs, and the
// program's arguments that name local files (auto-add). It lays them
// over the image as one file system (hostfs), says what was added from
// where, tells resolve which paths are added (resolve.WithAdded), and
// digests them for the disk's seed.
package content
