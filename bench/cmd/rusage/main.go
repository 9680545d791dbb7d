// Command rusage runs a command and writes what it cost, by the kernel's
// own accounting (wait4's rusage), as JSON to a file: peak RSS and CPU
// time.
//
//	rusage -o FILE -- COMMAND [ARG...]
//
// The benchmark starts every contender through it because Linux carries a
// process's peak RSS across exec from the memory it was started in: Go
// starts children with vfork, so a child of the benchmark would report at
// least the benchmark's own peak RSS. Started from this small process, the
// command's peak RSS is its own. The command's exit status is rusage's;
// SIGINT and SIGTERM are passed on to it, and it dies with rusage.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// Usage is what rusage writes.
type Usage struct {
	MaxRSS   int64   `json:"max_rss_bytes"`
	User     float64 `json:"user_seconds"`
	System   float64 `json:"system_seconds"`
	ExitCode int     `json:"exit_code"`
}

func main() {
	out := flag.String("o", "", "file to write the usage to (JSON)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rusage -o FILE -- COMMAND [ARG...]")
		os.Exit(2)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	u := Usage{ExitCode: cmd.ProcessState.ExitCode()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSS = ru.Maxrss << 10 // KiB on Linux
		u.User = time.Duration(ru.Utime.Nano()).Seconds()
		u.System = time.Duration(ru.Stime.Nano()).Seconds()
	}
	data, err := json.Marshal(u)
	if err == nil {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rusage: %v\n", err)
		os.Exit(127)
	}
	if u.ExitCode < 0 { // killed by a signal
		os.Exit(128 + int(cmd.ProcessState.Sys().(syscall.WaitStatus).Signal()))
	}
	os.Exit(u.ExitCode)
}
