package asyncio_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
)

// tlsTestServer is a TLS + HTTP/1.1 keep-alive echo server written the way a
// user writes one over corio.
type tlsTestServer struct {
	cfg       *tls.Config
	hsTimeout time.Duration
	mu        sync.Mutex // handshake errors are appended on the loop thread; read after
	hsErrs    []error
	served    int
}

func (s *tlsTestServer) handle(t *asyncio.Task, c *asyncio.Conn) {
	tc := tls.Server(c.NetConn(t), s.cfg)
	err := asyncio.WithTimeout(t, s.hsTimeout, func(t *asyncio.Task) error {
		return tc.HandshakeContext(t)
	})
	if err != nil {
		s.mu.Lock()
		s.hsErrs = append(s.hsErrs, err)
		s.mu.Unlock()
		return
	}
	br := bufio.NewReader(tc)
	bw := bufio.NewWriter(tc)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		out := "echo:" + req.URL.Path + ":" + string(body)
		resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Request: req,
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(out)), ContentLength: int64(len(out))}
		if err := resp.Write(bw); err != nil {
			return
		}
		if err := bw.Flush(); err != nil {
			return
		}
		s.mu.Lock()
		s.served++
		s.mu.Unlock()
	}
}

func tlsTestConfig(t *testing.T) (*tls.Config, *x509.CertPool) {
	cert := selfSigned(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, pool
}

// tlsTestClient returns an HTTPS client with a transport of its own (one
// keep-alive connection).
func tlsTestClient(pool *x509.CertPool) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "localhost"},
		MaxIdleConnsPerHost: 1,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, tr
}

func tlsTestDo(cl *http.Client, addr, path, body string) error {
	resp, err := cl.Post("https://"+addr+path, "text/plain", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if want := "echo:" + path + ":" + body; string(got) != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

func newR5Req(addr string, body io.Reader) (*http.Request, error) {
	return http.NewRequest("POST", "https://"+addr+"/slow", body)
}
