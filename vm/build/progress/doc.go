// Package progress draws a build's progress as live terminal bars
// (vbauerster/mpb), following the events of build.WithProgress: the bytes
// fetched while an image opens, each layer's bytes and the files written
// while a disk is written. Whether to draw at all (a terminal, not quiet)
// is the caller's choice: it passes the writer, or none.
//
// It must not import the CLI.
package progress
