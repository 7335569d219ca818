package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

// serveNetHTTP is the net/http hello world that examples/httpd is compared
// with.
func serveNetHTTP(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte("Hello, World!")
	return http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors):.*`)
	redisRate = regexp.MustCompile(`(?m)^(SET|GET): ([0-9.]+) requests per second`)
)

// proc is a helper server started for a tool stage.
type proc struct{ cmd *exec.Cmd }

func startProc(serverCPU int, addr string, name string, args []string, env ...string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=1"), env...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if serverCPU >= 0 {
		pinProcess(cmd.Process.Pid, serverCPU)
	}
	if err := waitPort(addr); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return &proc{cmd}, nil
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// stageTools runs the real-client stages whose tools are installed.
func stageTools(rep *report, tmp string, serverCPU, clientCPU int) {
	root := filepath.Dir(sourceDir())
	build := func(pkg string) (string, error) {
		out := filepath.Join(tmp, filepath.Base(pkg))
		b, err := exec.Command("go", "build", "-C", root, "-o", out, "./"+pkg).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", pkg, err, firstLine(string(b)))
		}
		return out, nil
	}
	self, _ := os.Executable()

	if wrk, err := exec.LookPath("wrk"); err != nil {
		rep.notes = append(rep.notes, "wrk stage skipped: wrk not installed (apt-get install wrk)")
	} else if httpd, err := build("examples/httpd"); err != nil {
		rep.notes = append(rep.notes, "wrk stage skipped: "+err.Error())
	} else {
		type target struct {
			name string
			args []string
		}
		for _, tg := range []target{
			{"corio httpd (uring)", []string{httpd, "-backend", "uring"}},
			{"corio httpd (epoll)", []string{httpd, "-backend", "epoll"}},
			{"net/http", []string{self, "nethttp"}},
		} {
			if tg.name == "corio httpd (uring)" && !uringAvailable() {
				continue
			}
			addr := freeAddr()
			fmt.Fprintf(os.Stderr, "wrk against %s ...\n", tg.name)
			var p *proc
			var err error
			if tg.args[0] == self {
				p, err = startProc(serverCPU, addr, self, nil, envServe+"=nethttp", envAddr+"="+addr)
			} else {
				p, err = startProc(serverCPU, addr, tg.args[0], append(tg.args[1:], "-addr", addr))
			}
			if err != nil {
				rep.notes = append(rep.notes, fmt.Sprintf("wrk %s: %v", tg.name, err))
				continue
			}
			out, err := runTool(clientCPU, wrk, "-t1", "-c64", "-d5s", "http://"+addr+"/")
			p.stop()
			note := ""
			if err != nil {
				note = err.Error()
			}
			if m := wrkErrors.FindString(out); m != "" {
				note = m
			}
			rep.tools = append(rep.tools, toolRow{"wrk -t1 -c64 -d5s", tg.name, "req/s", scanFloat(wrkRate, out), note})
		}
		rep.notes = append(rep.notes, "fasthttp is not measured (not a dependency of this module)")
	}

	rb, err := exec.LookPath("redis-benchmark")
	if err != nil {
		rep.notes = append(rep.notes, "redis stage skipped: redis-benchmark not installed (apt-get install redis-tools)")
		return
	}
	kv, err := build("examples/kv")
	if err != nil {
		rep.notes = append(rep.notes, "redis stage skipped: "+err.Error())
		return
	}
	type target struct {
		name string
		cmd  func(port string) []string
	}
	targets := []target{
		{"corio kv (auto)", func(port string) []string { return []string{kv, "-addr", "127.0.0.1:" + port} }},
	}
	if rs, err := exec.LookPath("redis-server"); err == nil {
		targets = append(targets, target{"redis-server", func(port string) []string {
			return []string{rs, "--port", port, "--save", "", "--appendonly", "no"}
		}})
	} else {
		rep.notes = append(rep.notes, "redis-server not installed: only corio kv measured (apt-get install redis-server)")
	}
	for _, tg := range targets {
		for _, pipe := range []int{1, 16} {
			addr := freeAddr()
			_, port, _ := net.SplitHostPort(addr)
			args := tg.cmd(port)
			fmt.Fprintf(os.Stderr, "redis-benchmark -P %d against %s ...\n", pipe, tg.name)
			p, err := startProc(serverCPU, addr, args[0], args[1:])
			if err != nil {
				rep.notes = append(rep.notes, fmt.Sprintf("redis %s: %v", tg.name, err))
				continue
			}
			out, err := runTool(clientCPU, rb, "-p", port, "-q", "-t", "set,get", "-n", "200000", "-c", "50", "-P", strconv.Itoa(pipe))
			p.stop()
			note := ""
			if err != nil {
				note = err.Error()
			}
			for _, m := range redisRate.FindAllStringSubmatch(out, -1) {
				v, _ := strconv.ParseFloat(m[2], 64)
				rep.tools = append(rep.tools, toolRow{fmt.Sprintf("redis-benchmark -c 50 -P %d", pipe), tg.name, m[1] + " req/s", v, note})
			}
		}
	}
}
