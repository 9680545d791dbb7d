package resolve

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Docker gives every container an environment even when its image sets
// none: PATH, HOSTNAME and HOME. A unikernel needs the same, and more so:
// Nanos halts when a program reads its environment and the disk's manifest
// has no environment tuple at all.

// DefaultHostname is the unikernel's host name (HOSTNAME, /etc/hostname,
// /etc/hosts) unless WithHostname sets one. It is fixed, not random as
// Docker's container IDs are, so that the same image gives the same disk.
const DefaultHostname = "nanos"

// passwdLimit bounds the /etc/passwd read for HOME.
const passwdLimit = 4 << 20

// dockerEnv adds what Docker adds to a container's environment when the
// image's Env and the caller's variables (already in s.env) leave it
// unset: PATH, HOSTNAME and HOME (the user's home in the image's
// /etc/passwd, "/" when it has none there).
func (s *session) dockerEnv(user string) error {
	if _, ok := s.getenv("PATH"); !ok {
		s.env = append(s.env, "PATH="+DefaultPath)
	}
	if _, ok := s.getenv("HOSTNAME"); !ok {
		s.env = append(s.env, "HOSTNAME="+s.o.hostname)
	}
	if _, ok := s.getenv("HOME"); !ok {
		home, err := s.homeOf(user)
		if err != nil {
			return err
		}
		s.env = append(s.env, "HOME="+home)
	}
	return nil
}

// homeOf finds the home directory of user (a name or numeric uid, maybe
// followed by ":group"; "" is root) in the image's /etc/passwd. Like
// Docker it falls back to "/" when the user has no entry.
func (s *session) homeOf(user string) (string, error) {
	user, _, _ = strings.Cut(user, ":")
	if user == "" {
		user = "root"
	}
	_, data, err := s.r.root.readFile("/etc/passwd", passwdLimit)
	if err != nil {
		if absent(err) {
			if user == "root" || user == "0" {
				return "/root", nil
			}
			return "/", nil
		}
		return "", fmt.Errorf("reading the image's /etc/passwd for HOME: %w", err)
	}
	if home, ok := passwdHome(data, user); ok {
		return home, nil
	}
	return "/", nil
}

// passwdHome returns the home field of the passwd line whose name or uid is
// user.
func passwdHome(data []byte, user string) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), passwdLimit)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if (f[0] == user || f[2] == user) && strings.HasPrefix(f[5], "/") {
			return f[5], true
		}
	}
	return "", false
}
