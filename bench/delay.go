package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DelayProxy forwards TCP connections to an upstream address and adds
// latency: every byte is held back for half the round-trip time in each
// direction, and a new connection starts forwarding only one round trip
// after it was accepted (the TCP handshake a real path would cost). It
// exists because netem, the kernel's way to add delay, is not available on
// the kernels the benchmark runs on; the veth's tbf qdisc still does the
// rate limiting.
type DelayProxy struct {
	Addr string // "127.0.0.1:PORT" to connect to

	ln       net.Listener
	upstream string
	rtt      time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// delayChunk is one read's worth of bytes and when it may be passed on.
type delayChunk struct {
	data []byte // nil: the sender closed its side
	due  time.Time
}

const (
	delayReadSize = 32 << 10
	// delayQueue bounds what one direction holds in flight (64 reads of
	// 32 KiB): far more than a 100 Mbit/s link carries in a round trip, yet
	// a slow reader still pushes back on the sender.
	delayQueue = 64
)

// StartDelayProxy listens on a loopback port and forwards to upstream
// ("HOST:PORT") with round-trip time rtt (0: no delay at all).
func StartDelayProxy(upstream string, rtt time.Duration) (*DelayProxy, error) {
	if rtt < 0 {
		return nil, fmt.Errorf("delay proxy: negative round-trip time %v", rtt)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("delay proxy: %w", err)
	}
	p := &DelayProxy{Addr: ln.Addr().String(), ln: ln, upstream: upstream, rtt: rtt, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Close stops listening and cuts every connection.
func (p *DelayProxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// track remembers c so that Close can cut it; false once closed.
func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) forget(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.forget(c)
			p.serve(c)
		}()
	}
}

func (p *DelayProxy) serve(client net.Conn) {
	defer client.Close()
	// What the client sends meanwhile waits in the socket buffer, as its
	// data would wait for the handshake to finish.
	time.Sleep(p.rtt)
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.forget(up)
	defer up.Close()
	oneWay := p.rtt / 2
	var wg sync.WaitGroup
	wg.Go(func() { pipeDelayed(up, client, oneWay) })
	wg.Go(func() { pipeDelayed(client, up, oneWay) })
	wg.Wait()
}

// pipeDelayed copies src to dst, each read passed on delay after it
// arrived. When src ends, dst's write side is closed (after the delay, like
// a FIN); when either fails, both are closed so the other direction ends
// too.
func pipeDelayed(dst, src net.Conn, delay time.Duration) {
	if delay == 0 {
		_, err := io.Copy(dst, src)
		finish(dst, src, err)
		return
	}
	queue := make(chan delayChunk, delayQueue)
	go func() {
		defer close(queue)
		for {
			buf := make([]byte, delayReadSize)
			n, err := src.Read(buf)
			if n > 0 {
				queue <- delayChunk{data: buf[:n], due: time.Now().Add(delay)}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					queue <- delayChunk{due: time.Now().Add(delay)}
				}
				return
			}
		}
	}()
	var err error
	clean := false
	for c := range queue {
		time.Sleep(time.Until(c.due))
		if c.data == nil {
			clean = true
			break
		}
		if _, err = dst.Write(c.data); err != nil {
			break
		}
	}
	if !clean && err == nil {
		err = io.ErrUnexpectedEOF // src failed
	}
	finish(dst, src, err)
	for range queue { // let the reader exit
	}
}

// finish ends one direction: a clean end half-closes dst, a failure
// closes both connections.
func finish(dst, src net.Conn, err error) {
	if err == nil {
		if hc, ok := dst.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
			return
		}
	}
	dst.Close()
	src.Close()
}
