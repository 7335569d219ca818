// Command bench measures corio against its peers on the same workload in one
// run and prints a table of ratios.
//
//	go run ./bench            # the full matrix (several minutes)
//	go run ./bench -quick     # a smoke run, under a minute
//
// Every server is its own process pinned to CPU 0 with GOMAXPROCS=1: corio on
// io_uring, corio on epoll, Go's net with a goroutine per connection,
// github.com/cloudwego/netpoll, and a C liburing echo server (built when gcc
// and liburing's headers are present). The load generator runs in this
// process, pinned to CPU 1. It keeps D messages of S bytes in flight on each
// of C connections, checks every echoed byte, and reports messages per
// second, latency percentiles, the server's CPU time per message (from
// /proc/PID/stat) and how busy its own CPU was. When the client's CPU is
// saturated, msgs/s says more about the client than the server, so servers
// are compared on CPU per message.
//
// The bench re-executes its own binary with -serve to start the Go servers.
package main
