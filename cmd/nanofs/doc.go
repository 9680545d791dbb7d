// Command nanofs is the CLI of nanofs: one cobra verb per file (build,
// run, pkg, resolve, mount, umount, ls, cat, inspect, mkfs, kernel). A verb
// parses its flags, makes one library call (vm/build.Build, Run, Resolve
// or Open; lazy.Open; tfs; vm's kernel functions) and prints the result.
//
// It owns only what a terminal user sees: flags and their defaults, help
// text, the one-line progress display, the summaries (text or --json),
// and the mapping of the libraries' typed errors (vm.OptionError,
// build.NoBootError, ...) to messages that name the flags to use. No
// pipeline logic lives here.
package main
