package bench

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoServer answers every connection by sending back what it receives,
// then closing its side when the client closes its own.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDelayProxyAddsRoundTrips(t *testing.T) {
	for _, rtt := range []time.Duration{0, 40 * time.Millisecond} {
		t.Run(rtt.String(), func(t *testing.T) {
			p, err := StartDelayProxy(echoServer(t), rtt)
			require.NoError(t, err)
			defer p.Close()

			t0 := time.Now()
			c, err := net.Dial("tcp", p.Addr)
			require.NoError(t, err)
			defer c.Close()
			buf := make([]byte, 4)
			// First exchange: the handshake's round trip, then the
			// request's.
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			first := time.Since(t0)
			t1 := time.Now()
			_, err = c.Write([]byte("pong"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, buf)
			require.NoError(t, err)
			second := time.Since(t1)

			assert.Equal(t, "pong", string(buf))
			assert.GreaterOrEqual(t, first, 2*rtt, "a new connection costs the handshake and the request")
			assert.GreaterOrEqual(t, second, rtt, "a request on an open connection costs one round trip")
			if rtt > 0 {
				// Generous: only "not wildly more" is a property of the
				// proxy; scheduling noise is not.
				assert.Less(t, second, rtt+200*time.Millisecond)
			}
		})
	}
}

// The proxy carries every byte, in order, both ways, and passes on the end
// of the stream (a half close) so that the client sees EOF.
func TestDelayProxyCarriesBytes(t *testing.T) {
	p, err := StartDelayProxy(echoServer(t), 4*time.Millisecond)
	require.NoError(t, err)
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	defer c.Close()

	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{7}).Read(data)
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Equal(t, len(data), len(got))
	assert.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
}

func TestDelayProxyClose(t *testing.T) {
	p, err := StartDelayProxy(echoServer(t), time.Millisecond)
	require.NoError(t, err)
	c, err := net.Dial("tcp", p.Addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	buf := make([]byte, 1)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)

	require.NoError(t, p.Close()) // cuts the open connection, returns
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(buf)
	assert.Error(t, err, "the connection is cut")
	_, err = net.Dial("tcp", p.Addr)
	assert.Error(t, err, "nothing listens any more")
	assert.NoError(t, p.Close(), "closing twice is harmless")
}

func TestStartDelayProxyRejectsNegativeRTT(t *testing.T) {
	_, err := StartDelayProxy("127.0.0.1:1", -time.Second)
	assert.ErrorContains(t, err, "negative")
}
