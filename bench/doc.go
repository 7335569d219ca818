// Command bench measures corio against its peers on the same workload in one
// run and prints a table of ratios.
//
//	go run ./bench            # the full matrix and stages (about 15 minutes)
//	go run ./bench -quick     # a smoke run, under a minute (CI runs it)
//	go run ./bench -readme    # the full run, then refresh bench/README.md
//
// Every server is its own process pinned to CPU 0 with GOMAXPROCS=1: corio on
// io_uring, corio on epoll, Go's net with a goroutine per connection,
// github.com/cloudwego/netpoll, and a C liburing echo server (built when gcc
// and liburing's headers are present). The load generator runs in this
// process, pinned to CPU 1 with GOMAXPROCS=1. It keeps D messages of S bytes
// in flight on each of C connections, checks every echoed byte, and reports
// messages per second, latency percentiles, the server's CPU time per
// message (from its process CPU-time clock, in ns, or /proc/PID/stat) and
// how busy its own CPU was. When the client's CPU is saturated, msgs/s says
// more about the client than the server, so servers are then judged on CPU
// per message.
//
// After the matrix come the syscalls per message (strace, and corio's own
// counters), the memory per idle connection, and, when the tools are
// installed, wrk against examples/httpd, net/http and fasthttp, and
// redis-benchmark against examples/kv and redis-server. A missing tool skips
// its stage with a note. The results go to stdout and to
// bench/results/<date>-<host>.{md,svg,txt}; see bench/README.md.
//
// The bench re-executes its own binary to start the Go servers.
package main
