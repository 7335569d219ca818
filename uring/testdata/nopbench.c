// nopbench: the C reference for uring's BenchmarkNop*: batches of NOPs
// submitted and reaped with liburing on a SINGLE_ISSUER|DEFER_TASKRUN ring.
//
//	gcc -O2 -o /tmp/nopbench uring/testdata/nopbench.c -luring
//	taskset -c 1 /tmp/nopbench 256 5000000
//
// Compare in the same run, pinned to the same core, with
//
//	taskset -c 1 go test -run '^$' -bench Nop -benchmem -count 5 ./uring/
//
// On a shared machine wall time swings with the other load on the core;
// CPU time per NOP is steadier: run both under `perf stat -e task-clock`
// with a fixed count (-test.benchtime 1000000x for the Go test binary) and
// divide by it.
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	int batch = argc > 1 ? atoi(argv[1]) : 256;
	long total = argc > 2 ? atol(argv[2]) : 5000000;
	struct io_uring ring;
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	int ret = io_uring_queue_init_params(batch, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "setup: %d\n", ret);
		return 1;
	}
	double start = now();
	long done = 0;
	while (done < total) {
		for (int i = 0; i < batch; i++)
			io_uring_prep_nop(io_uring_get_sqe(&ring));
		io_uring_submit_and_wait(&ring, batch);
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) n++;
		io_uring_cq_advance(&ring, n);
		done += batch;
	}
	printf("batch %d: %.1f ns/op\n", batch, (now() - start) * 1e9 / done);
	return 0;
}
