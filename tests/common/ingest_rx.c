// SPDX-License-Identifier: MIT
#include "ingest_rx.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define RX_MAX_SCRIPT 16

struct test_ingest_rx {
	int port;
	struct MHD_Daemon *d;
	pthread_mutex_t mu; /* below */
	struct test_ingest_req *reqs;
	size_t nreqs, cap, accepted;
	int script[RX_MAX_SCRIPT];
	size_t nscript, next;
};

/* One request being received. */
struct rx_conn {
	struct strbuf body;
};

static void copy_arg(struct MHD_Connection *conn, const char *key, char *dst, size_t len)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, key);

	snprintf(dst, len, "%s", v ? v : "");
}

static void copy_header(struct MHD_Connection *conn, const char *key, char *dst, size_t len)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, key);

	snprintf(dst, len, "%s", v ? v : "");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct test_ingest_rx *rx = cls;
	struct rx_conn *c = *con_cls;
	struct test_ingest_req rq = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;

	(void)version;
	if (!c) {
		*con_cls = xcalloc(1, sizeof(*c));
		return MHD_YES;
	}
	if (*upload_data_size) {
		strbuf_add(&c->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	snprintf(rq.method, sizeof(rq.method), "%s", method);
	snprintf(rq.path, sizeof(rq.path), "%s", url);
	copy_arg(conn, "name", rq.name, sizeof(rq.name));
	copy_arg(conn, "from", rq.from, sizeof(rq.from));
	copy_arg(conn, "until", rq.until, sizeof(rq.until));
	copy_arg(conn, "format", rq.format, sizeof(rq.format));
	copy_arg(conn, "spyName", rq.spy, sizeof(rq.spy));
	copy_arg(conn, "sampleRate", rq.rate, sizeof(rq.rate));
	copy_header(conn, "Content-Type", rq.content_type, sizeof(rq.content_type));
	copy_header(conn, "X-Scope-OrgID", rq.org_id, sizeof(rq.org_id));
	copy_header(conn, "Authorization", rq.authorization, sizeof(rq.authorization));
	rq.body = c->body;
	c->body = (struct strbuf)STRBUF_INIT;

	pthread_mutex_lock(&rx->mu);
	rq.status = rx->next < rx->nscript ? rx->script[rx->next++] : 200;
	if (rq.status / 100 == 2)
		rx->accepted++;
	xgrow((void **)&rx->reqs, &rx->cap, rx->nreqs + 1, sizeof(*rx->reqs));
	rx->reqs[rx->nreqs++] = rq;
	pthread_mutex_unlock(&rx->mu);

	/* Pyroscope answers errors with a short text; the pusher logs it. */
	{
		static const char msg[] = "test receiver says no\n";
		const char *body = rq.status / 100 == 2 ? "" : msg;

		resp = MHD_create_response_from_buffer(strlen(body), (void *)body,
						       MHD_RESPMEM_PERSISTENT);
	}
	if (rq.status == 429 || rq.status == 503)
		MHD_add_response_header(resp, "Retry-After", "0");
	ret = MHD_queue_response(conn, (unsigned int)rq.status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct rx_conn *c = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (c) {
		strbuf_release(&c->body);
		free(c);
		*con_cls = NULL;
	}
}

struct test_ingest_rx *test_ingest_rx__new(int port)
{
	struct test_ingest_rx *rx = xcalloc(1, sizeof(*rx));

	rx->port = port ? port : test_free_port();
	cr_assert_gt(rx->port, 0);
	pthread_mutex_init(&rx->mu, NULL);
	return rx;
}

int test_ingest_rx__port(const struct test_ingest_rx *rx)
{
	return rx->port;
}

int test_ingest_rx__listen(struct test_ingest_rx *rx)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rx->port)};

	if (rx->d)
		return 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rx->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
				 NULL, NULL, on_request, rx, MHD_OPTION_SOCK_ADDR, &sa,
				 MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
				 MHD_OPTION_NOTIFY_COMPLETED, on_completed, rx,
				 MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_END);
	return rx->d ? 0 : -EADDRINUSE;
}

void test_ingest_rx__close(struct test_ingest_rx *rx)
{
	if (rx->d)
		MHD_stop_daemon(rx->d);
	rx->d = NULL;
}

void test_ingest_rx__script(struct test_ingest_rx *rx, const int *statuses, size_t n)
{
	pthread_mutex_lock(&rx->mu);
	rx->nscript = n < RX_MAX_SCRIPT ? n : RX_MAX_SCRIPT;
	memcpy(rx->script, statuses, rx->nscript * sizeof(*statuses));
	rx->next = 0;
	pthread_mutex_unlock(&rx->mu);
}

size_t test_ingest_rx__count(struct test_ingest_rx *rx, size_t *accepted)
{
	size_t n;

	pthread_mutex_lock(&rx->mu);
	n = rx->nreqs;
	if (accepted)
		*accepted = rx->accepted;
	pthread_mutex_unlock(&rx->mu);
	return n;
}

bool test_ingest_rx__get(struct test_ingest_rx *rx, size_t i, struct test_ingest_req *out)
{
	bool ok;

	pthread_mutex_lock(&rx->mu);
	ok = i < rx->nreqs;
	if (ok) {
		*out = rx->reqs[i];
		out->body = (struct strbuf)STRBUF_INIT;
		if (rx->reqs[i].body.len)
			strbuf_add(&out->body, rx->reqs[i].body.buf, rx->reqs[i].body.len);
	}
	pthread_mutex_unlock(&rx->mu);
	return ok;
}

void test_ingest_rx__free(struct test_ingest_rx *rx)
{
	if (!rx)
		return;
	test_ingest_rx__close(rx);
	for (size_t i = 0; i < rx->nreqs; i++)
		strbuf_release(&rx->reqs[i].body);
	free(rx->reqs);
	pthread_mutex_destroy(&rx->mu);
	free(rx);
}
