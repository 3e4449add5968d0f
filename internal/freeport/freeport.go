// Package freeport hands tests loopback addresses for the processes they
// start. A port taken with Listen(":0") and closed again is one the
// kernel hands out next to anything else binding ":0" (an httptest server,
// another child process) or connecting out (every outgoing connection
// takes an ephemeral port): by the time the child process binds it, it may
// be gone. So the ports come from below the kernel's ephemeral range,
// which it never hands out by itself, each at most once per test binary,
// and each checked free when handed out.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// floor is the lowest port handed out.
const floor = 10000

// Addr returns "127.0.0.1:PORT" for a port that is free now, outside the
// ephemeral range, and not returned before by this test binary.
func Addr(t testing.TB) string {
	t.Helper()
	hi := ephemeralStart() // exclusive
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := floor + rand.IntN(hi-floor)
		if given[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // in use
		}
		_ = ln.Close()
		given[p] = true
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	t.Fatalf("no free port found between %d and %d", floor, hi)
	return ""
}

// ephemeralStart is the first port of the kernel's ephemeral range
// (32768 when it cannot be read).
func ephemeralStart() int {
	lo, hi := 32768, 0
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if n, _ := fmt.Sscan(string(b), &lo, &hi); n < 1 || lo <= floor+1000 {
			lo = 32768
		}
	}
	return lo
}
