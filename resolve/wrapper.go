package resolve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Most official images start with a shell wrapper (docker-entrypoint.sh)
// that rewrites the arguments and then execs the real program. Nanos runs
// one process: the shell could never fork or exec it. So the wrapper is
// evaluated here, at build time, by a shell interpreter (mvdan.cc/sh)
// whose every handler is bound to the image: files are opened, listed and
// tested in the image, commands are looked up in the image's PATH, and
// nothing is ever executed on the host. The argument vector of the final
// exec becomes the program.

// Wrapper is what evaluating an entrypoint wrapper script gave.
type Wrapper struct {
	Script string   `json:"script"`         // the wrapper, as found
	Argv   []string `json:"argv"`           // the command line it was run with (after the script)
	Exec   []string `json:"exec"`           // the command line of its final exec
	User   string   `json:"user,omitempty"` // the user a gosu/su-exec switch asked for
	// Effects are the commands with effects on files (mkdir, chown, ...)
	// that a unikernel's read-only root does not need; reported, not run.
	Effects []string `json:"effects,omitempty"`
}

// WrapperError says why a wrapper script cannot be evaluated at build
// time: it needs a real process (a program it runs and waits for, a
// command substitution, a background daemon).
type WrapperError struct {
	Script string
	Line   uint // 0 when unknown
	Err    error
}

func (e *WrapperError) Error() string {
	where := e.Script
	if e.Line > 0 {
		where = fmt.Sprintf("%s line %d", e.Script, e.Line)
	}
	return fmt.Sprintf("entrypoint wrapper %s: %v; it cannot be evaluated at build time, and a unikernel runs one program with no shell to run the wrapper: name the program to run instead", where, e.Err)
}

func (e *WrapperError) Unwrap() error { return e.Err }

// Limits of a wrapper evaluation.
const (
	wrapperScriptLimit = 1 << 20
	wrapperTimeout     = 3 * time.Second
	maxWrapperReexec   = 4 // gosu USER "$0" "$@" runs the script again
)

// shells are the #! interpreters whose scripts are evaluated as wrappers.
var shells = map[string]bool{"sh": true, "bash": true, "dash": true, "ash": true}

// effectCommands change files or ownership: a unikernel's root filesystem
// is built already and everything runs as one user, so they are reported
// and skipped.
var effectCommands = map[string]bool{
	"mkdir": true, "chown": true, "chmod": true, "chgrp": true, "ln": true, "touch": true,
	"rm": true, "find": true, "umask": true, "ulimit": true,
}

// userSwitches drop privileges and exec their command: `gosu USER CMD...`.
var userSwitches = map[string]bool{"gosu": true, "su-exec": true}

// errNoExec: the script runs to its end without an exec; it is left to
// its shell.
var errNoExec = errors.New("ends without exec'ing a program")

// errExecReached stops the interpreter at the final exec.
var errExecReached = errors.New("exec reached")

// evalWrapper evaluates the shell script at p (found at loc) run with
// args (args[0] the script's name) and returns the command line of its
// final exec, with the session's environment changed as the script
// exported.
func (s *session) evalWrapper(p string, loc *located, args []string) (*Wrapper, error) {
	_, src, err := s.r.root.readFile(loc.File, wrapperScriptLimit)
	if err != nil {
		return nil, err
	}
	// $0 is the path the kernel hands the shell: the script as found.
	w, err := s.evalScript(p, src, append([]string{p}, args[1:]...))
	if w != nil {
		w.Argv = append([]string(nil), args[1:]...)
	}
	return w, err
}

// evalScript evaluates the shell script src, named p, run with args
// (args[0] its $0).
func (s *session) evalScript(p string, src []byte, args []string) (*Wrapper, error) {
	w := &Wrapper{Script: p, Argv: append([]string(nil), args[1:]...)}
	uid := "0"
	argv := args
	for round := 0; ; round++ {
		final, err := s.evalOnce(w, p, src, argv, uid)
		if err != nil {
			return nil, err
		}
		if len(final) > 0 && userSwitches[path.Base(final[0])] {
			if len(final) < 3 {
				return nil, &WrapperError{Script: p, Err: fmt.Errorf("%s without a user and a command", final[0])}
			}
			w.User = final[1]
			w.Effects = append(w.Effects, fmt.Sprintf("%s %s: runs as %s (the unikernel has one user)", final[0], final[1], final[1]))
			uid = s.uidOf(final[1])
			final = final[2:]
			if final[0] == args[0] && round < maxWrapperReexec {
				argv = final // the script runs itself again as that user
				continue
			}
		}
		w.Exec = final
		return w, nil
	}
}

// evalOnce runs the script once and returns its final exec's arguments.
func (s *session) evalOnce(w *Wrapper, p string, src []byte, args []string, uid string) ([]string, error) {
	file, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(bytes.NewReader(src), p)
	if err != nil {
		return nil, &WrapperError{Script: p, Err: fmt.Errorf("cannot parse it: %w", err)}
	}
	execLast(file)
	if len(args) > 0 {
		file.Name = args[0] // $0
	}
	ev := &wrapperEval{s: s, w: w, script: p, uid: uid}
	env := append([]string(nil), s.env...)
	runner, err := interp.New(
		interp.Env(expand.ListEnviron(env...)),
		interp.Params(append([]string{"--"}, args[1:]...)...),
		interp.StdIO(nil, io.Discard, &ev.stderr),
		interp.CallHandler(ev.call),
		interp.ExecHandlers(func(interp.ExecHandlerFunc) interp.ExecHandlerFunc { return ev.exec }),
		interp.OpenHandler(ev.open),
		interp.StatHandler(ev.stat),
		interp.AccessHandler(ev.access),
		interp.ReadDirHandler2(ev.readDir),
	)
	if err != nil {
		return nil, fmt.Errorf("entrypoint wrapper %s: %w", p, err)
	}
	runner.Dir = s.cwd // set here: the Dir option would look for it on the host
	ctx, cancel := context.WithTimeout(context.Background(), wrapperTimeout)
	defer cancel()
	err = runner.Run(ctx, file)
	switch {
	case ev.err != nil: // even from a subshell that the script went on after
		return nil, ev.err
	case errors.Is(err, errExecReached):
	case err != nil && ctx.Err() != nil:
		return nil, &WrapperError{Script: p, Err: fmt.Errorf("still running after %v (a loop waiting for something?)", wrapperTimeout)}
	case err != nil:
		var status interp.ExitStatus
		if errors.As(err, &status) {
			msg := fmt.Sprintf("exits with status %d before it execs a program", status)
			if out := strings.TrimSpace(ev.stderr.String()); out != "" {
				msg += " (" + lastLine(out) + ")"
			}
			return nil, &WrapperError{Script: p, Err: errors.New(msg)}
		}
		return nil, &WrapperError{Script: p, Err: err}
	default:
		return nil, errNoExec
	}
	s.env = ev.env
	if ev.dir != "" {
		s.cwd = ev.dir // a cd before the exec
	}
	return ev.final, nil
}

// execLast makes the script's final command an exec when it runs a
// program (`node server.js`, `cd /app && node server.js`): the shell would
// exit with its status right after, as dash's -c does by exec'ing it.
// Shell built-ins and the script's own functions are left alone.
func execLast(file *syntax.File) {
	funcs := map[string]bool{}
	syntax.Walk(file, func(n syntax.Node) bool {
		if f, ok := n.(*syntax.FuncDecl); ok {
			funcs[f.Name.Value] = true
		}
		return true
	})
	if len(file.Stmts) == 0 {
		return
	}
	st := file.Stmts[len(file.Stmts)-1]
	for {
		b, ok := st.Cmd.(*syntax.BinaryCmd)
		if !ok || b.Op != syntax.AndStmt {
			break
		}
		st = b.Y
	}
	call, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || len(call.Args) == 0 || st.Background || st.Negated {
		return
	}
	if lit := call.Args[0].Lit(); lit != "" && (interp.IsBuiltin(lit) || funcs[lit]) {
		return // exec itself among them
	}
	word := &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{ValuePos: call.Args[0].Pos(), ValueEnd: call.Args[0].Pos(), Value: "exec"}}}
	call.Args = append([]*syntax.Word{word}, call.Args...)
}

// wrapperEval holds the handlers of one evaluation.
type wrapperEval struct {
	s      *session
	w      *Wrapper
	script string
	uid    string
	final  []string
	env    []string
	dir    string // the working directory at the exec
	err    error  // the first refusal, with its line
	stderr bytes.Buffer
}

// Internal commands the call handler rewrites shell built-ins to, so that
// they look into the image instead of the host.
const (
	lookCmd  = "\x00nanofs-command-v"
	umaskCmd = "\x00nanofs-umask"
)

func (e *wrapperEval) fail(ctx context.Context, format string, a ...any) error {
	werr := &WrapperError{Script: e.script, Err: fmt.Errorf(format, a...)}
	if hc := interp.HandlerCtx(ctx); hc.Pos.IsValid() {
		werr.Line = hc.Pos.Line()
	}
	if e.err == nil {
		e.err = werr
	}
	return werr
}

func (e *wrapperEval) call(ctx context.Context, args []string) ([]string, error) {
	switch args[0] {
	case "exec":
		if len(args) == 1 {
			return args, nil // exec with redirections only
		}
		rest := args[1:]
		if rest[0] == "--" {
			rest = rest[1:]
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return nil, e.fail(ctx, "exec %s is not supported", strings.Join(rest, " "))
		}
		e.final = rest
		e.env = exportedEnv(e.s.env, interp.HandlerCtx(ctx).Env)
		e.dir = interp.HandlerCtx(ctx).Dir
		return nil, errExecReached
	case "command":
		if len(args) >= 3 && (args[1] == "-v" || args[1] == "-V") {
			return append([]string{lookCmd}, args[2:]...), nil
		}
	case "which":
		return append([]string{lookCmd}, args[1:]...), nil
	case "umask": // not a built-in of the interpreter: answered in exec
		return append([]string{umaskCmd}, args[1:]...), nil
	case "wait", "trap", "kill", "jobs", "fg", "bg":
		if args[0] != "trap" {
			return nil, e.fail(ctx, "%s needs a real process", args[0])
		}
	}
	return args, nil
}

// exec runs the commands that are not shell built-ins: a few are answered
// from the image, the rest need a real process and stop the evaluation.
func (e *wrapperEval) exec(ctx context.Context, args []string) error {
	hc := interp.HandlerCtx(ctx)
	name := path.Base(args[0])
	switch {
	case args[0] == lookCmd:
		status := uint8(0)
		for _, a := range args[1:] {
			if interp.IsBuiltin(a) {
				fmt.Fprintln(hc.Stdout, a)
				continue
			}
			p, err := e.lookPath(hc, a)
			if err != nil {
				status = 1
				continue
			}
			fmt.Fprintln(hc.Stdout, p)
		}
		return interp.ExitStatus(status)
	case args[0] == umaskCmd && len(args) == 1:
		fmt.Fprintln(hc.Stdout, "0022") // Nanos's, and Docker's default
		return nil
	case args[0] == umaskCmd:
		args = append([]string{"umask"}, args[1:]...)
		fallthrough
	case effectCommands[name]:
		line := ""
		if hc.Pos.IsValid() {
			line = fmt.Sprintf("line %d: ", hc.Pos.Line())
		}
		e.w.Effects = append(e.w.Effects, line+strings.Join(args, " ")+" (not needed: the disk is built already)")
		return nil
	case name == "id":
		return e.id(hc, args[1:])
	case name == "basename" && len(args) >= 2:
		b := path.Base(args[1])
		if len(args) == 3 {
			b = strings.TrimSuffix(b, args[2])
		}
		fmt.Fprintln(hc.Stdout, b)
		return nil
	case name == "dirname" && len(args) == 2:
		fmt.Fprintln(hc.Stdout, path.Dir(args[1]))
		return nil
	case userSwitches[name]:
		return e.fail(ctx, "%s runs %s as a child process (only `exec %s` can be followed)", name, strings.Join(args[2:], " "), name)
	}
	return e.fail(ctx, "runs %s, which needs a real process", strings.Join(args, " "))
}

// id answers `id -u`, `id -g`, `id -un`: the unikernel's one user.
func (e *wrapperEval) id(hc interp.HandlerContext, args []string) error {
	switch strings.Join(args, " ") {
	case "-u", "-g", "-ru", "-rg":
		fmt.Fprintln(hc.Stdout, e.uid)
	case "-un", "-nu":
		name := "root"
		if e.uid != "0" {
			name = e.w.User
		}
		fmt.Fprintln(hc.Stdout, name)
	default:
		return interp.ExitStatus(1)
	}
	return nil
}

// lookPath finds name as `command -v` would, in the image's PATH.
func (e *wrapperEval) lookPath(hc interp.HandlerContext, name string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(hc.Dir, p)
		}
		loc, err := e.s.r.root.locate(p)
		if err != nil || !isExecutable(loc.Info) || !loc.Info.Mode().IsRegular() {
			return "", fs.ErrNotExist
		}
		return name, nil
	}
	pathVar := hc.Env.Get("PATH").String()
	for _, dir := range strings.Split(pathVar, ":") {
		if dir == "" {
			dir = hc.Dir
		}
		cand := path.Join(dir, name)
		if !path.IsAbs(cand) {
			cand = path.Join(hc.Dir, cand)
		}
		loc, err := e.s.r.root.locate(cand)
		if err == nil && loc.Info.Mode().IsRegular() && isExecutable(loc.Info) {
			return cand, nil
		}
	}
	return "", fs.ErrNotExist
}

func (e *wrapperEval) open(ctx context.Context, p string, flag int, _ os.FileMode) (io.ReadWriteCloser, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC) != 0 {
		switch p {
		case "/dev/null", "/dev/stdout", "/dev/stderr":
			return nopRWC{}, nil
		}
		return nil, e.fail(ctx, "writes %s, which the built disk would not have", p)
	}
	if p == "/dev/null" {
		return nopRWC{}, nil
	}
	loc, data, err := e.s.r.root.readFile(p, wrapperScriptLimit)
	if err != nil {
		if loc != nil && loc.Info != nil && loc.Info.IsDir() {
			return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("is a directory")}
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	return readOnly{bytes.NewReader(data)}, nil
}

func (e *wrapperEval) stat(_ context.Context, p string, follow bool) (fs.FileInfo, error) {
	if follow {
		loc, err := e.s.r.root.locate(p)
		if err != nil {
			return nil, &os.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
		}
		return loc.Info, nil
	}
	dir, err := e.s.r.root.locate(path.Dir(p))
	if err != nil || !dir.Info.IsDir() {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	info, err := e.s.r.root.lstat(path.Join(dir.File, path.Base(p)))
	if err != nil {
		return nil, &os.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return info, nil
}

// access answers -r, -w, -x as for root: anything that exists is readable
// and writable, executable when an x bit is set (or a directory).
func (e *wrapperEval) access(_ context.Context, p string, mode interp.AccessMode) error {
	loc, err := e.s.r.root.locate(p)
	if err != nil {
		return &os.PathError{Op: "access", Path: p, Err: fs.ErrNotExist}
	}
	if mode&interp.AccessExec != 0 && !loc.Info.IsDir() && loc.Info.Mode().Perm()&0o111 == 0 {
		return &os.PathError{Op: "access", Path: p, Err: fs.ErrPermission}
	}
	return nil
}

func (e *wrapperEval) readDir(_ context.Context, p string) ([]fs.DirEntry, error) {
	loc, err := e.s.r.root.locate(p)
	if err != nil || !loc.Info.IsDir() {
		return nil, &os.PathError{Op: "readdir", Path: p, Err: fs.ErrNotExist}
	}
	return e.s.r.root.readDir(loc.File)
}

// uidOf is the uid of a user name (or a numeric uid) in the image.
func (s *session) uidOf(user string) string {
	user, _, _ = strings.Cut(user, ":")
	if _, err := strconv.Atoi(user); err == nil {
		return user
	}
	_, data, err := s.r.root.readFile("/etc/passwd", passwdLimit)
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 3 && f[0] == user {
				return f[2]
			}
		}
	}
	return "65534"
}

// exportedEnv is the environment the exec'd program gets: the variables
// of before in their order (with the values the script gave them, unless
// it unset them), then those the script exported, sorted.
func exportedEnv(before []string, env expand.Environ) []string {
	exported := map[string]string{}
	env.Each(func(name string, vr expand.Variable) bool {
		if vr.Exported && vr.IsSet() && vr.Kind == expand.String {
			switch name {
			case "PWD", "OLDPWD", "SHLVL", "_":
			default:
				exported[name] = vr.Str
			}
		}
		return true
	})
	var out []string
	for _, kv := range before {
		name, _, _ := strings.Cut(kv, "=")
		if v, ok := exported[name]; ok {
			out = append(out, name+"="+v)
			delete(exported, name)
		}
	}
	for _, name := range sortedKeys(exported) {
		out = append(out, name+"="+exported[name])
	}
	return out
}

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopRWC) Write(p []byte) (int, error) { return len(p), nil }
func (nopRWC) Close() error                { return nil }

type readOnly struct{ *bytes.Reader }

func (readOnly) Write([]byte) (int, error) { return 0, errors.New("read-only") }
func (readOnly) Close() error              { return nil }

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
