/* SPDX-License-Identifier: MIT */
/*
 * tests/common/ingest_rx.h — a stand-in for Grafana Pyroscope's ingest API,
 * for tests of the pusher: a libmicrohttpd server on 127.0.0.1 that records
 * every request (method, path, the query parameters Pyroscope reads, body)
 * and answers from a script of statuses, then 200. It can stop listening
 * and listen again on the same port, as a server that goes down and comes
 * back.
 */
#ifndef BPFPROF_TESTS_INGEST_RX_H
#define BPFPROF_TESTS_INGEST_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/util.h"

struct test_ingest_req {
	char method[16];
	char path[128]; /* without the query */
	/* Query parameters, URL-decoded; "" when absent. */
	char name[1024], from[32], until[32], format[32], spy[64], rate[32];
	char content_type[128];
	/* Headers the pusher may send; "" when absent. */
	char org_id[256]; /* X-Scope-OrgID */
	char authorization[512];
	struct strbuf body;
	int status; /* what the receiver answered */
};

struct test_ingest_rx;

/* A receiver for @port (0 = a free one), not listening yet. Asserts on failure. */
struct test_ingest_rx *test_ingest_rx__new(int port);
int test_ingest_rx__port(const struct test_ingest_rx *rx);
/* Starts listening on 127.0.0.1:port. 0 or -errno. */
int test_ingest_rx__listen(struct test_ingest_rx *rx);
/* Stops listening and closes every connection (clients then get refused). */
void test_ingest_rx__close(struct test_ingest_rx *rx);
/* The next @n requests get these statuses (e.g. 503, 429, 400), later ones 200. */
void test_ingest_rx__script(struct test_ingest_rx *rx, const int *statuses, size_t n);
/* Requests recorded so far, and how many were answered 2xx. */
size_t test_ingest_rx__count(struct test_ingest_rx *rx, size_t *accepted);
/*
 * A copy of request @i in *@out (release out->body); false when there is
 * no such request.
 */
bool test_ingest_rx__get(struct test_ingest_rx *rx, size_t i, struct test_ingest_req *out);
/* Stops listening if needed and frees everything. NULL is a no-op. */
void test_ingest_rx__free(struct test_ingest_rx *rx);

#endif
