// Command nanofs is the CLI of nanofs: one cobra verb per file (build,
// run, pkg, resolve, mount, umount, ls, cat, inspect, mkfs, kernel). A verb
// parses its flags, makes one library call (vm/build.Build, Run, Resolve
// or Open; lazy.Open; tfs; vm's kernel functions) and prints the result.
//
// It owns only what a terminal user sees: flags and their defaults, help
// text, printing the libraries' summaries (text or --json), the names of
// the flags for the libraries' option names (errors' remedies from
// build.Reword, vm.OptionError, vm.OptionName in log lines) and the
// exit code of each kind of failure (build.FailureOf). No pipeline logic
// lives here.
package main
