package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// readyFDEnv tells a mount server started by StartServer which descriptor
// to report on: "ok" once the mount is up, or why it failed.
const readyFDEnv = "NANOFS_MOUNT_READY_FD"

const (
	readyOK     = "ok\n"
	readyFailed = "error: "
)

// IsServer reports whether this process is a mount server that
// StartServer started (and its parent waits for its Ready report).
func IsServer() bool { return os.Getenv(readyFDEnv) != "" }

// StartServer runs exe with args as a detached mount server (its own
// session: no terminal signals, and it outlives this process) and returns
// its pid once it reports the mount ready, or why it could not. The
// server must call TakeReady and report on it.
func StartServer(ctx context.Context, exe string, args []string) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("starting the server: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3") // ExtraFiles[0] is fd 3
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return 0, fmt.Errorf("starting the server: %w", err)
	}

	reply := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		reply <- string(b)
	}()
	select {
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, ctx.Err()
	case msg := <-reply:
		switch {
		case msg == readyOK:
			pid := cmd.Process.Pid // Release makes it -1
			return pid, cmd.Process.Release()
		case strings.HasPrefix(msg, readyFailed):
			_ = cmd.Wait()
			return 0, errors.New(strings.TrimPrefix(msg, readyFailed))
		default:
			werr := cmd.Wait()
			return 0, fmt.Errorf("the mount server exited before the mount was ready (%v)", werr)
		}
	}
}

// Ready is a mount server's end of the pipe to the process that started
// it; nil (reporting nothing) in a process StartServer did not start.
type Ready struct{ f *os.File }

// TakeReady takes the report pipe StartServer handed this process.
func TakeReady() *Ready {
	s := os.Getenv(readyFDEnv)
	if s == "" {
		return nil
	}
	os.Unsetenv(readyFDEnv)
	fd, err := strconv.Atoi(s)
	if err != nil {
		return nil
	}
	return &Ready{f: os.NewFile(uintptr(fd), "mount-ready")}
}

// Report tells the parent the outcome, once; later calls do nothing.
func (r *Ready) Report(err error) {
	if r == nil || r.f == nil {
		return
	}
	msg := readyOK
	if err != nil {
		msg = readyFailed + err.Error()
	}
	_, _ = io.WriteString(r.f, msg)
	r.f.Close()
	r.f = nil
}
