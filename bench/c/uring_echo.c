// uring_echo: the C reference echo server of corio's bench — the "close to
// the physical limit" line. One thread, one ring (SINGLE_ISSUER |
// DEFER_TASKRUN when the kernel has them), multishot accept, and per
// connection a recv into a 16 KiB buffer followed by a send of what came
// in. Submissions are batched: one io_uring_submit_and_wait per loop turn.
//
//	gcc -O2 -o uring_echo bench/c/uring_echo.c -luring
//	./uring_echo PORT
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define BUF_SIZE (16 << 10)

struct conn {
	int fd;
	int sent, len;
	char buf[BUF_SIZE];
};

static struct io_uring ring;

static struct io_uring_sqe *get_sqe(void) {
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	while (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void *tag(void *p, int op) { return (void *)((unsigned long)p | op); }

static void post_recv(struct conn *c) {
	struct io_uring_sqe *sqe = get_sqe();
	io_uring_prep_recv(sqe, c->fd, c->buf, BUF_SIZE, 0);
	io_uring_sqe_set_data(sqe, tag(c, OP_RECV));
}

static void post_send(struct conn *c) {
	struct io_uring_sqe *sqe = get_sqe();
	io_uring_prep_send(sqe, c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, tag(c, OP_SEND));
}

static void post_accept(int lfd) {
	struct io_uring_sqe *sqe = get_sqe();
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, (void *)(unsigned long)OP_ACCEPT);
}

static void close_conn(struct conn *c) {
	close(c->fd);
	free(c);
}

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 9999;
	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
		perror("listen");
		return 1;
	}
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = 4096;
	if (io_uring_queue_init_params(1024, &ring, &p) < 0) {
		memset(&p, 0, sizeof p);
		int ret = io_uring_queue_init_params(1024, &ring, &p);
		if (ret < 0) {
			/* liburing returns -errno and leaves errno alone */
			fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
			return 1;
		}
	}
	post_accept(lfd);
	for (;;) {
		io_uring_submit_and_wait(&ring, 1);
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			unsigned long ud = (unsigned long)io_uring_cqe_get_data(cqe);
			int op = ud & 7;
			struct conn *c = (struct conn *)(ud & ~7UL);
			int res = cqe->res;
			if (op == OP_ACCEPT) {
				if (res >= 0) {
					setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *nc = aligned_alloc(8, sizeof *nc);
					nc->fd = res;
					post_recv(nc);
				}
				if (!(cqe->flags & IORING_CQE_F_MORE))
					post_accept(lfd);
			} else if (op == OP_RECV) {
				if (res <= 0) {
					close_conn(c);
					continue;
				}
				c->len = res;
				c->sent = 0;
				post_send(c);
			} else if (op == OP_SEND) {
				if (res <= 0) {
					close_conn(c);
					continue;
				}
				c->sent += res;
				if (c->sent < c->len)
					post_send(c);
				else
					post_recv(c);
			}
		}
		io_uring_cq_advance(&ring, n);
	}
}
