package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// serveNetHTTP is the net/http hello world that examples/httpd is compared
// with.
func serveNetHTTP(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done() // SIGTERM: stop at once (the bench waits 5s, then kills)
		l.Close()
	}()
	body := []byte("Hello, World!")
	err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	if ctx.Err() != nil {
		return nil
	}
	return err
}

var (
	wrkRate   = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkReqs   = regexp.MustCompile(`(\d+) requests in`)
	wrkErrors = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors):.*`)
	redisRate = regexp.MustCompile(`(?m)^(SET|GET): ([0-9.]+) requests per second`)
)

// The real-client stages' parameters.
const (
	wrkArgs    = "-t1 -c64 -d5s"
	redisConns = 50
)

// redisRequests is redis-benchmark's -n for each pipeline depth.
var redisRequests = map[int]int{1: 200000, 16: 1000000}

// runTool runs a load tool (wrk, redis-benchmark) pinned to clientCPU
// (unless -1) and returns its output.
func runTool(clientCPU int, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	track(cmd.Process)
	defer untrack(cmd.Process)
	if clientCPU >= 0 {
		pinProcess(cmd.Process.Pid, clientCPU)
	}
	err := cmd.Wait()
	return out.String(), err
}

// toolRun runs a load tool against s and measures the server's CPU time
// over the tool's whole run.
func toolRun(s *server, clientCPU int, name string, args ...string) (string, time.Duration, error) {
	c0, _ := pidCPU(s.pid())
	out, err := runTool(clientCPU, name, args...)
	c1, _ := pidCPU(s.pid())
	return out, c1 - c0, err
}

// goBuild builds a main package of the module (or of a nested module, with
// dir) into tmp.
func goBuild(tmp, dir, pkg string) (string, error) {
	out := filepath.Join(tmp, strings.ReplaceAll(filepath.Join(dir, pkg), string(filepath.Separator), "_"))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, firstLine(string(b)))
	}
	return out, nil
}

// toolTarget is a server a real client is pointed at.
type toolTarget struct {
	name string
	argv func(addr string) []string // nil: this binary's own server (kind)
	kind string
}

func (tg toolTarget) start(serverCPU int) (*server, error) {
	addr := freeAddr()
	if tg.argv == nil {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		return startProcess(tg.name, addr, serverCPU, []string{self}, envServe+"="+tg.kind, envAddr+"="+addr)
	}
	return startProcess(tg.name, addr, serverCPU, tg.argv(addr))
}

// stageTools runs the real-client stages whose tools are installed.
func stageTools(rep *report, tmp string, serverCPU, clientCPU int) {
	root := filepath.Join(sourceDir(), "..")
	stageWrk(rep, tmp, root, serverCPU, clientCPU)
	stageRedis(rep, tmp, root, serverCPU, clientCPU)
}

// exampleTargets builds examples/<name> and returns one target per corio
// backend, named "corio <name> (<backend>)"; a failed build is noted under
// stage and gives none.
func exampleTargets(rep *report, tmp, root, name, stage string) []toolTarget {
	exe, err := goBuild(tmp, root, "./examples/"+name)
	if err != nil {
		rep.note(stage + ": examples/" + name + " skipped: " + err.Error())
		return nil
	}
	var targets []toolTarget
	for _, b := range corioBackends() {
		targets = append(targets, toolTarget{name: "corio " + name + " (" + b + ")", argv: func(addr string) []string {
			return []string{exe, "-backend", b, "-addr", addr}
		}})
	}
	return targets
}

func stageWrk(rep *report, tmp, root string, serverCPU, clientCPU int) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		rep.note("wrk stage skipped: wrk not installed (apt-get install wrk)")
		return
	}
	progress("building examples/httpd and the fasthttp hello world ...")
	targets := exampleTargets(rep, tmp, root, "httpd", "wrk")
	targets = append(targets, toolTarget{name: "net/http", kind: "nethttp"})
	// fasthttp is its own module (bench/fasthttp), fetched from the module
	// proxy when it is built, so that corio does not depend on it.
	if fh, err := goBuild(tmp, filepath.Join(sourceDir(), "fasthttp"), "."); err != nil {
		rep.note("wrk: fasthttp skipped: " + err.Error())
	} else {
		targets = append(targets, toolTarget{name: "fasthttp", argv: func(addr string) []string {
			return []string{fh, "-addr", addr}
		}})
	}
	for _, tg := range targets {
		progress(fmt.Sprintf("wrk %s against %s ...", wrkArgs, tg.name))
		s, err := tg.start(serverCPU)
		if err != nil {
			rep.note(fmt.Sprintf("wrk %s: %v", tg.name, err))
			continue
		}
		out, cpu, err := toolRun(s, clientCPU, wrk, append(strings.Fields(wrkArgs), "http://"+s.addr+"/")...)
		s.stop()
		row := toolRow{stage: "wrk " + wrkArgs, server: tg.name, metric: "req/s", value: scanFloat(wrkRate, out)}
		if n := scanFloat(wrkReqs, out); n > 0 {
			row.cpuPerReq = float64(cpu.Nanoseconds()) / n
		}
		if err != nil {
			row.note = err.Error()
		}
		if m := wrkErrors.FindString(out); m != "" {
			row.note = strings.TrimSpace(m)
		}
		rep.tools = append(rep.tools, row)
		progress(fmt.Sprintf("  %.0f req/s, %.0f ns server CPU per request %s", row.value, row.cpuPerReq, row.note))
	}
}

func stageRedis(rep *report, tmp, root string, serverCPU, clientCPU int) {
	rb, err := exec.LookPath("redis-benchmark")
	if err != nil {
		rep.note("redis stage skipped: redis-benchmark not installed (apt-get install redis-tools)")
		return
	}
	targets := exampleTargets(rep, tmp, root, "kv", "redis")
	if rs, err := exec.LookPath("redis-server"); err == nil {
		targets = append(targets, toolTarget{name: "redis-server", argv: func(addr string) []string {
			_, port, _ := net.SplitHostPort(addr)
			return []string{rs, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no"}
		}})
	} else {
		rep.note("redis: redis-server not installed, only examples/kv is measured (apt-get install redis-server)")
	}
	for _, tg := range targets {
		s, err := tg.start(serverCPU)
		if err != nil {
			rep.note(fmt.Sprintf("redis %s: %v", tg.name, err))
			continue
		}
		_, port, _ := net.SplitHostPort(s.addr)
		for _, pipe := range []int{1, 16} {
			for _, test := range []string{"set", "get"} {
				n := redisRequests[pipe]
				stage := fmt.Sprintf("redis-benchmark -c %d -P %d", redisConns, pipe)
				progress(fmt.Sprintf("%s -t %s against %s ...", stage, test, tg.name))
				out, cpu, err := toolRun(s, clientCPU, rb, "-h", "127.0.0.1", "-p", port, "-q", "-t", test,
					"-n", strconv.Itoa(n), "-c", strconv.Itoa(redisConns), "-P", strconv.Itoa(pipe))
				row := toolRow{stage: stage, server: tg.name, metric: strings.ToUpper(test) + " req/s", cpuPerReq: float64(cpu.Nanoseconds()) / float64(n)}
				row.value, row.note = redisResult(out, err)
				rep.tools = append(rep.tools, row)
				progress(fmt.Sprintf("  %.0f req/s, %.0f ns server CPU per request %s", row.value, row.cpuPerReq, row.note))
			}
		}
		s.stop()
	}
}

// redisResult reads the rate out of redis-benchmark -q's output, whose
// progress lines end in \r rather than \n.
func redisResult(out string, err error) (float64, string) {
	m := redisRate.FindStringSubmatch(strings.ReplaceAll(out, "\r", "\n"))
	if m == nil {
		if err != nil {
			return 0, err.Error()
		}
		return 0, "no result: " + firstLine(out)
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	return v, ""
}

// corioBackends are the backends the corio examples are measured on.
func corioBackends() []string {
	if uringAvailable() {
		return []string{"uring", "epoll"}
	}
	return []string{"epoll"}
}

func scanFloat(re *regexp.Regexp, s string) float64 {
	m := re.FindStringSubmatch(s)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}
