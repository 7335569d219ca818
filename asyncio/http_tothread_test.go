package asyncio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/corio-go/corio/asyncio"
	"go.uber.org/goleak"
)

// Scenario 4: net/http's client in ToThread with the task as the request
// context, the WithTimeout firing mid-request.
func TestHTTPClientInToThreadTimesOut(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/body" {
			w.Header().Set("Content-Length", "100")
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	ignore := goleak.IgnoreCurrent()
	for _, path := range []string{"/stall", "/body"} {
		conformWithOthers(t, ignore, func(task *asyncio.Task) error {
			start := time.Now()
			err := asyncio.WithTimeout(task, 100*time.Millisecond, func(t *asyncio.Task) error {
				_, err := asyncio.ToThread(t, func() (struct{}, error) {
					req, err := http.NewRequestWithContext(t, "GET", ts.URL+path, nil)
					if err != nil {
						return struct{}{}, err
					}
					resp, err := cl.Do(req)
					if err != nil {
						return struct{}{}, err
					}
					defer resp.Body.Close()
					_, err = io.ReadAll(resp.Body)
					return struct{}{}, err
				})
				return err
			})
			if took := time.Since(start); took > time.Second {
				return fmt.Errorf("%s: took %v", path, took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("%s: %v (%T), want DeadlineExceeded", path, err, err)
			}
			tr.CloseIdleConnections()
			return task.Checkpoint()
		})
	}
}

// conformWithOthers is conform with goroutines running before (a test server)
// ignored.
func conformWithOthers(t *testing.T, ignore goleak.Option, fn func(task *asyncio.Task) error) {
	for _, b := range testBackends(t) {
		t.Run(b, func(t *testing.T) {
			fds := openFDs(t)
			if err := asyncio.Run(fn, asyncio.WithBackend(b)); err != nil {
				t.Fatal(err)
			}
			goleak.VerifyNone(t, ignore)
			if after := openFDs(t); after != fds {
				t.Fatalf("fd leak: %d open before, %d after", fds, after)
			}
		})
	}
}
