package main_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/monohook/monohook/internal/pgtest"
)

// tcpProxy forwards connections to target until stop, after which its
// port is closed: a database server that went away.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	t.Cleanup(p.stop)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *tcpProxy) stop() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// When PostgreSQL goes away, /readyz of `serve` says the database cannot
// commit, and nothing else: not the user, the database or its address,
// which go to the log (without the password).
func TestReadyzWhenPostgreSQLIsDown(t *testing.T) {
	u, err := url.Parse(pgtest.FreshDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	dbName := strings.TrimPrefix(u.Path, "/")
	u.Host = p.ln.Addr().String()
	u.User = url.UserPassword("postgres", "proxy-pass-7781") // trust auth: never asked for
	d := startServe(t, os.Environ(), "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--dry-run", "--database", u.String())
	readyURL := strings.TrimSuffix(d.url, "/webhook") + "/readyz"
	get := func() (int, string) {
		resp, err := http.Get(readyURL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(); code != http.StatusOK {
		t.Fatalf("readyz with the database up: %d %s", code, body)
	}
	p.stop()
	var code int
	var body string
	waitFor(t, "readyz to see the database gone", func() bool {
		code, body = get()
		return code != http.StatusOK
	})
	// Asked again, it still says no more (a second try of the database
	// is a new connection, refused, whose error names all of it).
	for i := range 3 {
		if i > 0 {
			code, body = get()
		}
		if code != http.StatusServiceUnavailable || body != `{"error":"database: cannot commit","status":"unavailable"}` {
			t.Errorf("readyz with the database gone: %d %s", code, body)
		}
		for _, secret := range []string{"postgres", dbName, u.Host, u.Port(), "proxy-pass-7781"} {
			if strings.Contains(body, secret) {
				t.Errorf("readyz tells %q: %s", secret, body)
			}
		}
	}
	logs := d.log()
	if !strings.Contains(logs, "not ready") || !strings.Contains(logs, dbName) {
		t.Errorf("the log does not say why it is not ready:\n%s", logs)
	}
	if strings.Contains(logs, "proxy-pass-7781") {
		t.Errorf("the log shows the database password:\n%s", logs)
	}
}
