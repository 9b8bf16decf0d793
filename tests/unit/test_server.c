// SPDX-License-Identifier: MIT
/*
 * Tests for server/: a fake struct srv_source with a known profile, and a
 * small raw-socket HTTP/1.1 client. Servers listen on 127.0.0.1 port 0
 * only; every socket has a receive timeout and every test a time limit.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "common/util.h"
#include "profiler/profile.h"
#include "server/server.h"
#include "tests/common/pprof_read.h"
#include "tests/common/promtext.h"
#include "tests/common/testutil.h"

#define IO_TIMEOUT_S 10

/* ---- fake source -------------------------------------------------------- */

struct fake {
	pthread_mutex_t mu;
	int ret; /* returned by window() */
	bool null_profile; /* return 0 without a profile */
	unsigned int sleep_ms; /* bounded sleep inside window() */
	unsigned int calls;
	unsigned int last_seconds;
	int inflight, max_inflight;
};

static struct fake fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

/*
 * Two stacks of process "fakeproc" (pid 42):
 *   fake_root -> fake_mid -> fake_leaf_a   7 samples
 *   fake_root -> fake_leaf_b               3 samples
 */
static struct prof_profile *fake_profile(void)
{
	static const struct prof_mapping_in map = {
		.start = 0x400000,
		.limit = 0x500000,
		.file = "/usr/bin/fakeproc",
		.has_functions = true,
	};
	static const struct prof_line_in l_root = {.name = "fake_root"};
	static const struct prof_line_in l_mid = {.name = "fake_mid"};
	static const struct prof_line_in l_a = {.name = "fake_leaf_a"};
	static const struct prof_line_in l_b = {.name = "fake_leaf_b"};
	const struct prof_loc_in stack_a[] = {
		{0x401030, &map, &l_a, 1},
		{0x401020, &map, &l_mid, 1},
		{0x401010, &map, &l_root, 1},
	};
	const struct prof_loc_in stack_b[] = {
		{0x401040, &map, &l_b, 1},
		{0x401010, &map, &l_root, 1},
	};
	struct prof_sample_in s = {
		.pid = 42, .tid = 43, .comm = "fakeproc", .thread = "fakethread"};
	struct prof_profile *p = prof_profile__new(10000000);

	s.locs = stack_a;
	s.nlocs = ARRAY_SIZE(stack_a);
	s.count = 7;
	prof_profile__add_sample(p, &s);
	s.locs = stack_b;
	s.nlocs = ARRAY_SIZE(stack_b);
	s.count = 3;
	prof_profile__add_sample(p, &s);
	return p;
}

static int fake_window(void *ctx, unsigned int seconds, struct prof_profile **out)
{
	struct fake *f = ctx;
	int ret;

	pthread_mutex_lock(&f->mu);
	f->calls++;
	f->last_seconds = seconds;
	if (++f->inflight > f->max_inflight)
		f->max_inflight = f->inflight;
	pthread_mutex_unlock(&f->mu);

	if (f->sleep_ms)
		usleep(f->sleep_ms * 1000);

	pthread_mutex_lock(&f->mu);
	f->inflight--;
	ret = f->ret;
	pthread_mutex_unlock(&f->mu);

	if (ret)
		return ret;
	*out = f->null_profile ? NULL : fake_profile();
	return 0;
}

static void fake_status(void *ctx, struct strbuf *out)
{
	(void)ctx;
	strbuf_adds(out, "samples 42\n");
}

static const struct srv_source fake_src = {
	.window = fake_window,
	.status = fake_status,
	.ctx = &fake,
};

static struct srv *start_server(void)
{
	struct srv *s = srv__start("127.0.0.1:0", &fake_src);

	cr_assert_not_null(s, "srv__start: %s", strerror(errno));
	cr_assert_gt(srv__port(s), 0);
	return s;
}

/* ---- a small HTTP/1.1 client -------------------------------------------- */

struct http_resp {
	int status; /* 0 when no status line came back */
	char *raw; /* everything received, NUL-terminated */
	size_t raw_len;
	const char *headers; /* into raw: from the status line to the blank line */
	const char *body; /* into raw */
	size_t body_len;
};

static int connect_port(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

/* Sends all of @data; false when the server closed first (it may, on garbage). */
static bool send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Reads until EOF (or an error or the receive timeout). */
static void read_all(int fd, struct strbuf *sb)
{
	char buf[65536];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		strbuf_add(sb, buf, (size_t)n);
	strbuf_add(sb, "", 0); /* NUL-terminated even when nothing came */
}

static void parse_resp(struct strbuf *sb, struct http_resp *r)
{
	char *end;

	memset(r, 0, sizeof(*r));
	r->raw = strbuf_detach(sb, &r->raw_len);
	r->headers = r->raw;
	sscanf(r->raw, "HTTP/1.%*d %d", &r->status);
	end = strstr(r->raw, "\r\n\r\n");
	if (end) {
		*end = '\0'; /* headers become a C string; body follows */
		r->body = end + 4;
		r->body_len = r->raw_len - (size_t)(r->body - r->raw);
	} else {
		r->body = r->raw + r->raw_len;
	}
}

static void http_raw(int port, const void *req, size_t len, struct http_resp *r)
{
	struct strbuf sb = STRBUF_INIT;
	int fd = connect_port(port);

	send_all(fd, req, len);
	read_all(fd, &sb);
	close(fd);
	parse_resp(&sb, r);
}

static void http(int port, const char *method, const char *target, struct http_resp *r)
{
	char req[2048];
	int n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test_server\r\n"
		     "Connection: close\r\n\r\n",
		     method, target);
	cr_assert(n > 0 && (size_t)n < sizeof(req));
	http_raw(port, req, (size_t)n, r);
}

static void resp_free(struct http_resp *r)
{
	free(r->raw);
	r->raw = NULL;
}

/* Value of header @name (case-insensitive) copied into @buf, or NULL. */
static const char *header(const struct http_resp *r, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name);
	const char *line = strstr(r->headers, "\r\n");

	while (line) {
		const char *next;

		line += 2;
		next = strstr(line, "\r\n");
		if (!strncasecmp(line, name, nlen) && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			size_t vlen = next ? (size_t)(next - v) : strlen(v);

			while (vlen && *v == ' ') {
				v++;
				vlen--;
			}
			if (vlen >= size)
				vlen = size - 1;
			memcpy(buf, v, vlen);
			buf[vlen] = '\0';
			return buf;
		}
		line = next;
	}
	return NULL;
}

static void assert_header(const struct http_resp *r, const char *name, const char *want)
{
	char buf[256];
	const char *v = header(r, name, buf, sizeof(buf));

	cr_assert_not_null(v, "no %s header in:\n%s", name, r->headers);
	cr_assert_str_eq(v, want, "%s", name);
}

/* The body is complete: as long as Content-Length says. */
static void assert_complete(const struct http_resp *r)
{
	char buf[64];
	const char *cl = header(r, "Content-Length", buf, sizeof(buf));

	cr_assert_not_null(cl, "no Content-Length in:\n%s", r->headers);
	cr_assert_eq(strtoull(cl, NULL, 10), r->body_len);
}

static void assert_one_line_text(const struct http_resp *r, int status)
{
	cr_assert_eq(r->status, status, "want %d, got %d:\n%s", status, r->status, r->headers);
	assert_header(r, "Content-Type", "text/plain; charset=utf-8");
	assert_complete(r);
	cr_assert_gt(r->body_len, 1);
	cr_assert_eq(r->body[r->body_len - 1], '\n');
	cr_assert_eq(memchr(r->body, '\n', r->body_len), r->body + r->body_len - 1,
		     "more than one line: %s", r->body);
}

static double now_s(void)
{
	return (double)now_mono_ns() / 1e9;
}

/* ---- pprof decoding ----------------------------------------------------- */

/* Decodes the gzip pprof body and checks it is the fake profile. */
static void assert_fake_pprof(const struct http_resp *r)
{
	Perftools__Profiles__Profile *pb;
	char err[256] = "";
	bool seen_a = false, seen_b = false;
	int vi;
	size_t i;

	cr_assert_geq(r->body_len, 2);
	cr_assert_eq((unsigned char)r->body[0], 0x1f, "gzip magic");
	cr_assert_eq((unsigned char)r->body[1], 0x8b, "gzip magic");
	pb = pprof_read(r->body, r->body_len);
	cr_assert_not_null(pb, "body is not a gzip pprof Profile");
	cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "%s", err);
	vi = pprof_value_index(pb, "samples", "count");
	cr_assert_geq(vi, 0);
	cr_assert_eq(pb->n_sample, 2);
	for (i = 0; i < pb->n_sample; i++) {
		const Perftools__Profiles__Sample *s = pb->sample[i];
		struct strbuf stack = STRBUF_INIT;
		const char *comm = pprof_label_str(pb, s, "comm");
		int64_t pid = -1;

		cr_assert_eq(pprof_sample_stack(pb, s, &stack), 0);
		cr_assert_str_eq(comm ? comm : "(none)", "fakeproc");
		cr_assert(pprof_label_num(pb, s, "pid", &pid));
		cr_assert_eq(pid, 42);
		if (!strcmp(stack.buf, "fake_root;fake_mid;fake_leaf_a")) {
			cr_assert_eq(s->value[vi], 7);
			seen_a = true;
		} else {
			cr_assert_str_eq(stack.buf, "fake_root;fake_leaf_b");
			cr_assert_eq(s->value[vi], 3);
			seen_b = true;
		}
		strbuf_release(&stack);
	}
	cr_assert(seen_a && seen_b);
	pprof_free(pb);
}

/* ---- tests -------------------------------------------------------------- */

TestSuite(server, .timeout = 30);

Test(server, healthz)
{
	struct srv *s = start_server();
	struct http_resp r;

	http(srv__port(s), "GET", "/healthz", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
	assert_complete(&r);
	cr_assert_str_eq(r.body, "ok\nsamples 42\n");
	resp_free(&r);
	cr_assert_eq(fake.calls, 0, "/healthz must not open a window");
	srv__stop(s);
}

Test(server, healthz_without_status_callback)
{
	struct srv_source src = fake_src;
	struct http_resp r;
	struct srv *s;

	src.status = NULL;
	s = srv__start("127.0.0.1:0", &src);
	cr_assert_not_null(s);
	http(srv__port(s), "GET", "/healthz", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.body, "ok\n");
	resp_free(&r);
	srv__stop(s);
}

Test(server, html_pages)
{
	static const char *const paths[] = {"/", "/debug/pprof/", "/debug/pprof"};
	struct srv *s = start_server();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		struct http_resp r;

		http(srv__port(s), "GET", paths[i], &r);
		cr_assert_eq(r.status, 200, "%s: %s", paths[i], r.headers);
		assert_header(&r, "Content-Type", "text/html; charset=utf-8");
		assert_complete(&r);
		cr_assert_not_null(strstr(r.body, "href=\"/debug/pprof/profile"), "%s", paths[i]);
		if (i == 0) {
			cr_assert_not_null(strstr(r.body, "href=\"/flamegraph.svg"));
			cr_assert_not_null(strstr(r.body, "href=\"/folded"));
			cr_assert_not_null(strstr(r.body, "href=\"/healthz\""));
			cr_assert_not_null(strstr(r.body, "href=\"/debug/pprof/\""));
		}
		resp_free(&r);
	}
	cr_assert_eq(fake.calls, 0);
	srv__stop(s);
}

Test(server, profile_is_gzip_pprof)
{
	struct srv *s = start_server();
	struct http_resp r;

	http(srv__port(s), "GET", "/debug/pprof/profile?seconds=2", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "application/octet-stream");
	assert_header(&r, "Content-Disposition", "attachment; filename=\"profile.pb.gz\"");
	assert_complete(&r);
	assert_fake_pprof(&r);
	cr_assert_eq(fake.calls, 1);
	cr_assert_eq(fake.last_seconds, 2);
	resp_free(&r);
	srv__stop(s);
}

/* The window gets the requested length, the route's default when absent. */
Test(server, seconds_reach_the_window)
{
	static const struct {
		const char *target;
		unsigned int seconds;
	} cases[] = {
		{"/debug/pprof/profile", 30},
		{"/debug/pprof/profile?seconds=1", 1},
		{"/debug/pprof/profile?seconds=300", 300},
		{"/debug/pprof/profile?seconds=007", 7},
		{"/debug/pprof/profile?seconds=%32%30", 20},
		/* Parca, Pyroscope and go tool pprof add parameters of their own. */
		{"/debug/pprof/profile?debug=1&seconds=14&foo=bar", 14},
		{"/debug/pprof/profile?seconds=3&seconds=9", 3},
		{"/debug/pprof/profile?debug=1", 30},
		{"/flamegraph.svg", 10},
		{"/flamegraph.svg?seconds=59", 59},
		{"/folded", 10},
		{"/folded?seconds=299", 299},
	};
	struct srv *s = start_server();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http_resp r;

		fake.last_seconds = 0;
		http(srv__port(s), "GET", cases[i].target, &r);
		cr_assert_eq(r.status, 200, "%s: %s", cases[i].target, r.headers);
		cr_assert_eq(fake.last_seconds, cases[i].seconds, "%s: window of %u s",
			     cases[i].target, fake.last_seconds);
		resp_free(&r);
	}
	cr_assert_eq(fake.calls, ARRAY_SIZE(cases));
	srv__stop(s);
}

Test(server, folded)
{
	struct srv *s = start_server();
	struct http_resp r;

	http(srv__port(s), "GET", "/folded?seconds=3", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
	assert_complete(&r);
	/* folded_encode(): "comm;root;...;leaf count\n", sorted by stack text. */
	cr_assert_str_eq(r.body, "fakeproc;fake_root;fake_leaf_b 3\n"
				 "fakeproc;fake_root;fake_mid;fake_leaf_a 7\n");
	resp_free(&r);
	srv__stop(s);
}

Test(server, flamegraph)
{
	struct srv *s = start_server();
	struct http_resp r;

	http(srv__port(s), "GET", "/flamegraph.svg?seconds=4", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "image/svg+xml");
	assert_complete(&r);
	cr_assert_not_null(strstr(r.body, "<svg"));
	cr_assert_not_null(strstr(r.body, "fake_leaf_a"));
	cr_assert_not_null(strstr(r.body, "4 s window"), "subtitle names the window length");
	resp_free(&r);
	srv__stop(s);
}

struct concurrent_req {
	int port;
	const char *target;
	struct http_resp r;
};

static void *concurrent_get(void *arg)
{
	struct concurrent_req *c = arg;

	http(c->port, "GET", c->target, &c->r);
	return NULL;
}

/* Three scrapes at once: each gets its own window, and they overlap in time. */
Test(server, concurrent_profiles_run_in_parallel)
{
	struct concurrent_req reqs[3] = {
		{.target = "/debug/pprof/profile?seconds=5"},
		{.target = "/debug/pprof/profile?seconds=5"},
		{.target = "/debug/pprof/profile?seconds=5"},
	};
	pthread_t th[ARRAY_SIZE(reqs)];
	struct srv *s;
	struct srv_stats st;
	double t0, elapsed;
	size_t i;

	fake.sleep_ms = 1000;
	s = start_server();
	t0 = now_s();
	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		reqs[i].port = srv__port(s);
		cr_assert_eq(pthread_create(&th[i], NULL, concurrent_get, &reqs[i]), 0);
	}
	for (i = 0; i < ARRAY_SIZE(reqs); i++)
		pthread_join(th[i], NULL);
	elapsed = now_s() - t0;

	for (i = 0; i < ARRAY_SIZE(reqs); i++) {
		cr_assert_eq(reqs[i].r.status, 200, "request %zu: %s", i, reqs[i].r.headers);
		assert_fake_pprof(&reqs[i].r);
		resp_free(&reqs[i].r);
	}
	cr_assert_eq(fake.calls, 3, "one window per request");
	cr_assert_eq(fake.max_inflight, 3, "the windows overlapped");
	/* Serially this would take 3 s. */
	cr_assert_lt(elapsed, 2.5, "took %.2f s", elapsed);
	srv__stats(s, &st);
	cr_assert_eq(st.requests[SRV_ROUTE_PROFILE][SRV_STATUS_200], 3);
	cr_assert_eq(st.windows_open, 0);
	srv__stop(s);
}

Test(server, bad_seconds_are_400)
{
	static const char *const routes[] = {"/debug/pprof/profile", "/flamegraph.svg", "/folded"};
	static const char *const queries[] = {
		"?seconds=abc",
		"?seconds=",
		"?seconds",
		"?seconds=1.5",
		"?seconds=-1",
		"?seconds=0",
		"?seconds=301",
		"?seconds=100000",
		"?seconds=30x",
		"?seconds=%2B5", /* "+5" */
		"?seconds=%205", /* " 5" */
		"?seconds=5%20",
		"?seconds=0x10",
		"?seconds=1e2",
		"?seconds=99999999999999999999999999999999",
		"?seconds=18446744073709551617", /* 2^64 + 1: wraps to 1 if unchecked */
		"?seconds=4294967297", /* 2^32 + 1 */
		"?debug=1&seconds=abc",
	};
	struct srv *s = start_server();
	size_t i, j;

	for (i = 0; i < ARRAY_SIZE(routes); i++) {
		for (j = 0; j < ARRAY_SIZE(queries); j++) {
			char target[256];
			struct http_resp r;

			snprintf(target, sizeof(target), "%s%s", routes[i], queries[j]);
			http(srv__port(s), "GET", target, &r);
			cr_assert_eq(r.status, 400, "%s: %s", target, r.headers);
			assert_one_line_text(&r, 400);
			cr_assert_str_eq(r.body, "bad seconds: must be an integer from 1 to 300\n",
					 "%s", target);
			resp_free(&r);
		}
	}
	cr_assert_eq(fake.calls, 0, "no window for a bad request");
	srv__stop(s);
}

Test(server, unknown_path_is_404)
{
	static const struct {
		const char *target;
		const char *body;
	} cases[] = {
		{"/x", "not found: /x\n"},
		{"/x?seconds=5", "not found: /x\n"},
		{"/debug/pprof/heap", "not found: /debug/pprof/heap\n"},
		{"/healthz/", "not found: /healthz/\n"},
		{"/folded.txt", "not found: /folded.txt\n"},
		/* A newline in the path must not split the one-line reply. */
		{"/a%0Ab", "not found: /a?b\n"},
	};
	struct srv *s = start_server();
	struct srv_stats st;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct http_resp r;

		http(srv__port(s), "GET", cases[i].target, &r);
		assert_one_line_text(&r, 404);
		cr_assert_str_eq(r.body, cases[i].body);
		assert_header(&r, "X-Content-Type-Options", "nosniff");
		resp_free(&r);
	}
	srv__stats(s, &st);
	cr_assert_eq(st.requests[SRV_ROUTE_OTHER][SRV_STATUS_404], ARRAY_SIZE(cases));
	srv__stop(s);
}

Test(server, long_path_is_cut_in_404)
{
	struct srv *s = start_server();
	struct http_resp r;
	char target[1100];

	target[0] = '/';
	memset(target + 1, 'a', sizeof(target) - 2);
	target[sizeof(target) - 1] = '\0';
	http(srv__port(s), "GET", target, &r);
	assert_one_line_text(&r, 404);
	cr_assert_lt(r.body_len, 300);
	cr_assert_not_null(strstr(r.body, "...\n"));
	resp_free(&r);
	srv__stop(s);
}

Test(server, other_methods_are_405)
{
	static const char *const methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
	struct srv *s = start_server();
	size_t i;

	for (i = 0; i < ARRAY_SIZE(methods); i++) {
		struct http_resp r;
		char want[64];

		http(srv__port(s), methods[i], "/debug/pprof/profile?seconds=1", &r);
		assert_one_line_text(&r, 405);
		assert_header(&r, "Allow", "GET, HEAD");
		snprintf(want, sizeof(want), "method not allowed: %s\n", methods[i]);
		cr_assert_str_eq(r.body, want);
		resp_free(&r);
	}
	cr_assert_eq(fake.calls, 0);
	srv__stop(s);
}

/* A POST with a body is refused before the body is read. */
Test(server, post_with_body_is_405)
{
	static const char req[] = "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
				  "Content-Type: text/plain\r\nContent-Length: 11\r\n"
				  "Connection: close\r\n\r\nhello world";
	struct srv *s = start_server();
	struct http_resp r;

	http_raw(srv__port(s), req, sizeof(req) - 1, &r);
	assert_one_line_text(&r, 405);
	assert_header(&r, "Allow", "GET, HEAD");
	resp_free(&r);
	srv__stop(s);
}

/* HEAD answers with headers only and opens no window. */
Test(server, head)
{
	struct srv *s = start_server();
	struct http_resp r;
	double t0 = now_s();
	char buf[64];

	fake.sleep_ms = 3000; /* would show in the elapsed time */
	http(srv__port(s), "HEAD", "/debug/pprof/profile?seconds=30", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "application/octet-stream");
	cr_assert_eq(r.body_len, 0, "a body after HEAD: %s", r.body);
	/* The length of a body never made is unknown: claiming one would be false. */
	cr_assert_null(header(&r, "Content-Length", buf, sizeof(buf)));
	cr_assert_null(header(&r, "Transfer-Encoding", buf, sizeof(buf)));
	resp_free(&r);

	http(srv__port(s), "HEAD", "/folded?seconds=0", &r);
	cr_assert_eq(r.status, 400);
	cr_assert_eq(r.body_len, 0);
	resp_free(&r);

	http(srv__port(s), "HEAD", "/healthz", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 0);
	resp_free(&r);

	cr_assert_eq(fake.calls, 0);
	cr_assert_lt(now_s() - t0, 2.0);
	srv__stop(s);
}

Test(server, source_errors)
{
	static const struct {
		int ret;
		bool null_profile;
		int status;
		const char *body;
	} cases[] = {
		{-ECANCELED, false, 503, "agent is shutting down\n"},
		{-EIO, false, 500, "profile failed: Input/output error\n"},
		{-ENOMEM, false, 500, "profile failed: Cannot allocate memory\n"},
		{0, true, 500, "profile failed: No data available\n"},
	};
	static const char *const targets[] = {"/debug/pprof/profile?seconds=1", "/flamegraph.svg",
					      "/folded"};
	struct srv *s = start_server();
	size_t i, j;

	log_level = 0; /* the warnings below are expected */
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		fake.ret = cases[i].ret;
		fake.null_profile = cases[i].null_profile;
		for (j = 0; j < ARRAY_SIZE(targets); j++) {
			struct http_resp r;

			http(srv__port(s), "GET", targets[j], &r);
			assert_one_line_text(&r, cases[i].status);
			cr_assert_str_eq(r.body, cases[i].body, "%s", targets[j]);
			resp_free(&r);
		}
	}
	srv__stop(s);
}

/* Garbage, malformed and cut-off requests: no crash, and the server still answers. */
Test(server, malformed_requests)
{
	static const char nul_bytes[] = "GET /he\0lthz HTTP/1.1\r\nHost: a\r\n\r\n";
	static const struct {
		const char *data;
		size_t len;
	} cases[] = {
#define RAW(s) {s, sizeof(s) - 1}
		RAW("\r\n\r\n"),
		RAW("GET\r\n\r\n"),
		RAW("GET /\r\n\r\n"),
		RAW("GET / HTTP/9.9\r\nHost: a\r\n\r\n"),
		RAW("GET / FOO/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET  /healthz  HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("get /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n"),
		RAW("GET /healthz HTTP/1.1\r\n: empty name\r\n\r\n"),
		RAW("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"),
		RAW("GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: "
		    "99999999999999999999\r\n\r\n"),
		RAW("GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
		RAW("GET /healthz?%%%=%%% HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET /folded?seconds=%ZZ HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET /%00 HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
		RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), /* a TLS ClientHello */
		RAW("\xff\xfe\xfd\x00\x01\x02garbage\r\n\r\n"),
		/* Cut off mid-headers, then the client goes away. */
		RAW("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Foo: ba"),
		RAW("GET /debug/pprof/profile?seconds=1 HTTP/1.1\r\nHo"),
		RAW("GE"),
		{nul_bytes, sizeof(nul_bytes) - 1},
#undef RAW
	};
	struct srv *s = start_server();
	struct strbuf big = STRBUF_INIT;
	struct http_resp r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int fd = connect_port(srv__port(s));
		struct strbuf sb = STRBUF_INIT;

		send_all(fd, cases[i].data, cases[i].len);
		shutdown(fd, SHUT_WR); /* EOF: nothing more is coming */
		read_all(fd, &sb);
		close(fd);
		strbuf_release(&sb);
	}

	/* Headers larger than any buffer MHD keeps per connection. */
	strbuf_adds(&big, "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: ");
	while (big.len < 256 * 1024)
		strbuf_adds(&big,
			    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	strbuf_adds(&big, "\r\n\r\n");
	http_raw(srv__port(s), big.buf, big.len, &r);
	cr_assert_neq(r.status, 200, "a 256 KiB header should be refused");
	resp_free(&r);
	strbuf_reset(&big);

	/* A 64 KiB request target. */
	strbuf_adds(&big, "GET /");
	while (big.len < 64 * 1024)
		strbuf_adds(&big,
			    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	strbuf_adds(&big, " HTTP/1.1\r\nHost: a\r\n\r\n");
	http_raw(srv__port(s), big.buf, big.len, &r);
	cr_assert_neq(r.status, 200);
	resp_free(&r);
	strbuf_release(&big);

	/* A client that connects and leaves without a byte. */
	close(connect_port(srv__port(s)));

	http(srv__port(s), "GET", "/healthz", &r);
	cr_assert_eq(r.status, 200, "server stopped answering: %s", r.headers);
	cr_assert_str_eq(r.body, "ok\nsamples 42\n");
	resp_free(&r);
	cr_assert_eq(fake.calls, 0, "no malformed request may open a window");
	srv__stop(s);
}

/* Two pipelined requests on one keep-alive connection, as scrapers reuse connections. */
Test(server, keep_alive)
{
	static const char req[] =
		"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
		"GET /folded?seconds=1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
	struct srv *s = start_server();
	struct http_resp r;
	const char *second;

	http_raw(srv__port(s), req, sizeof(req) - 1, &r);
	cr_assert_eq(r.status, 200);
	/* The first body ends where the second response starts. */
	cr_assert_eq(strncmp(r.body, "ok\nsamples 42\nHTTP/1.1 200 ", 27), 0, "%s", r.body);
	second = strstr(r.body + 14, "\r\n\r\n");
	cr_assert_not_null(second);
	cr_assert_str_eq(second + 4, "fakeproc;fake_root;fake_leaf_b 3\n"
				     "fakeproc;fake_root;fake_mid;fake_leaf_a 7\n");
	cr_assert_eq(fake.calls, 1);
	resp_free(&r);
	srv__stop(s);
}

Test(server, stats_count_routes_and_statuses)
{
	struct srv *s = start_server();
	struct srv_stats st;
	struct http_resp r;

	http(srv__port(s), "GET", "/healthz", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/healthz", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/debug/pprof", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/folded?seconds=1", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/folded?seconds=x", &r);
	resp_free(&r);
	http(srv__port(s), "POST", "/folded", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/nope", &r);
	resp_free(&r);
	fake.ret = -ECANCELED;
	http(srv__port(s), "GET", "/debug/pprof/profile?seconds=1", &r);
	resp_free(&r);

	srv__stats(s, &st);
	cr_assert_eq(st.requests[SRV_ROUTE_HEALTHZ][SRV_STATUS_200], 2);
	cr_assert_eq(st.requests[SRV_ROUTE_ROOT][SRV_STATUS_200], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_PPROF_INDEX][SRV_STATUS_200], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_FOLDED][SRV_STATUS_200], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_FOLDED][SRV_STATUS_400], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_FOLDED][SRV_STATUS_405], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_OTHER][SRV_STATUS_404], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_PROFILE][SRV_STATUS_503], 1);
	cr_assert_eq(st.windows_open, 0);
	cr_assert_str_eq(srv_route_name(SRV_ROUTE_PROFILE), "/debug/pprof/profile");
	cr_assert_eq(srv_status_code(SRV_STATUS_503), 503);
	srv__stop(s);
}

Test(server, parse_address)
{
	static const struct {
		const char *in;
		int family; /* 0: must fail with -EINVAL */
		const char *addr;
		unsigned int port;
	} cases[] = {
		{"127.0.0.1:7071", AF_INET, "127.0.0.1", 7071},
		{"127.0.0.1:0", AF_INET, "127.0.0.1", 0},
		{"0.0.0.0:65535", AF_INET, "0.0.0.0", 65535},
		{"10.1.2.3:080", AF_INET, "10.1.2.3", 80},
		{"localhost:7071", AF_INET, "127.0.0.1", 7071},
		{"[::1]:80", AF_INET6, "::1", 80},
		{"[::]:7071", AF_INET6, "::", 7071},
		{"[fe80::1:2]:1", AF_INET6, "fe80::1:2", 1},
		{":7071", AF_INET6, "::", 7071},
		{":0", AF_INET6, "::", 0},
		{"127.0.0.1:99999", 0},
		{"127.0.0.1:65536", 0},
		{"127.0.0.1:-1", 0},
		{"127.0.0.1:+80", 0},
		{"127.0.0.1:80x", 0},
		{"127.0.0.1: 80", 0},
		{"127.0.0.1:", 0},
		{"127.0.0.1", 0},
		{"127.0.0.1:99999999999999999999999", 0},
		{"nohost", 0},
		{"nohost:80", 0},
		{"example.com:80", 0},
		{"256.0.0.1:80", 0},
		{"1.2.3:80", 0},
		{" 127.0.0.1:80", 0},
		{"::1:80", 0},
		{"[::1]", 0},
		{"[::1]80", 0},
		{"[::1]:", 0},
		{"[]:80", 0},
		{"[127.0.0.1]:80", 0},
		{"[fe80::1%eth0]:80", 0},
		{"[::1:80", 0},
		{":", 0},
		{"", 0},
		{NULL, 0},
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sockaddr_storage ss;
		unsigned int len = 12345;
		char buf[INET6_ADDRSTRLEN];
		int err = srv_parse_address(cases[i].in, &ss, &len);

		if (!cases[i].family) {
			cr_assert_eq(err, -EINVAL, "'%s' accepted", cases[i].in);
			continue;
		}
		cr_assert_eq(err, 0, "'%s' refused", cases[i].in);
		cr_assert_eq(ss.ss_family, cases[i].family, "%s", cases[i].in);
		if (cases[i].family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

			cr_assert_eq(len, sizeof(*sin));
			inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
			cr_assert_eq(ntohs(sin->sin_port), cases[i].port, "%s", cases[i].in);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

			cr_assert_eq(len, sizeof(*sin6));
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
			cr_assert_eq(ntohs(sin6->sin6_port), cases[i].port, "%s", cases[i].in);
		}
		cr_assert_str_eq(buf, cases[i].addr, "%s", cases[i].in);
	}
}

Test(server, stop_without_requests)
{
	struct srv *s = start_server();

	srv__stop(s);
	srv__stop(NULL);
}

/* srv__stop() waits for a window in progress instead of freeing under it. */
Test(server, stop_waits_for_open_window)
{
	struct concurrent_req req = {.target = "/folded?seconds=1"};
	struct srv *s;
	pthread_t th;
	double t0;
	int i;

	fake.sleep_ms = 700;
	s = start_server();
	req.port = srv__port(s);
	cr_assert_eq(pthread_create(&th, NULL, concurrent_get, &req), 0);
	for (i = 0; i < 500 && !__atomic_load_n(&fake.inflight, __ATOMIC_RELAXED); i++)
		usleep(10000);
	cr_assert_eq(fake.inflight, 1, "the window never opened");
	t0 = now_s();
	srv__stop(s);
	cr_assert_eq(fake.inflight, 0, "srv__stop() returned with a window open");
	cr_assert_gt(now_s() - t0, 0.3);
	pthread_join(th, NULL);
	/* Whether the reply made it out before the socket closed is MHD's business. */
	resp_free(&req.r);
}

Test(server, start_errors)
{
	struct srv_source no_window = fake_src;
	struct srv *s = start_server();
	struct srv *s2;
	char addr[64];

	/* The same address twice: the second fails, with the kernel's reason. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", srv__port(s));
	errno = 0;
	s2 = srv__start(addr, &fake_src);
	cr_assert_null(s2);
	cr_assert_eq(errno, EADDRINUSE, "errno %d (%s)", errno, strerror(errno));

	errno = 0;
	cr_assert_null(srv__start("127.0.0.1:99999", &fake_src));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(srv__start("nohost", &fake_src));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(srv__start("127.0.0.1:0", NULL));
	cr_assert_eq(errno, EINVAL);
	no_window.window = NULL;
	errno = 0;
	cr_assert_null(srv__start("127.0.0.1:0", &no_window));
	cr_assert_eq(errno, EINVAL);

	/* The first server is unharmed. */
	{
		struct http_resp r;

		http(srv__port(s), "GET", "/healthz", &r);
		cr_assert_eq(r.status, 200);
		resp_free(&r);
	}
	srv__stop(s);
}

/* ---- /api/..., history and filters ------------------------------------------ */

struct fake_history {
	pthread_mutex_t mu;
	int64_t start_ns, end_ns; /* last range asked for */
	struct prof_filter f; /* last series filter (strings not kept) */
	bool had_comm, had_container;
	unsigned int queries, series;
};

static struct fake_history hist = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int fake_query(void *ctx, int64_t start_ns, int64_t end_ns, struct prof_profile **out)
{
	(void)ctx;
	pthread_mutex_lock(&hist.mu);
	hist.queries++;
	hist.start_ns = start_ns;
	hist.end_ns = end_ns;
	pthread_mutex_unlock(&hist.mu);
	*out = fake_profile();
	(*out)->time_nanos = start_ns;
	(*out)->duration_nanos = end_ns - start_ns;
	return 0;
}

static int fake_series(void *ctx, int64_t start_ns, int64_t end_ns, const struct prof_filter *f,
		       struct api_series *out)
{
	(void)ctx;
	pthread_mutex_lock(&hist.mu);
	hist.series++;
	hist.start_ns = start_ns;
	hist.end_ns = end_ns;
	hist.f = *f;
	hist.had_comm = f->comm != NULL;
	hist.had_container = f->container != NULL;
	pthread_mutex_unlock(&hist.mu);
	api_series__add(out, start_ns, 10 * 1000000000LL, 500, 10000000);
	return 0;
}

static struct srv *start_history_server(void)
{
	struct srv_source src = fake_src;
	struct srv *s;

	src.query = fake_query;
	src.series = fake_series;
	s = srv__start("127.0.0.1:0", &src);
	cr_assert_not_null(s, "srv__start: %s", strerror(errno));
	return s;
}

static bool body_has(const struct http_resp *r, const char *needle)
{
	return r->body && strstr(r->body, needle);
}

Test(server, api_routes_answer_json)
{
	struct srv *s = start_history_server();
	struct http_resp r;
	int64_t now = (int64_t)now_wall_ns();

	http(srv__port(s), "GET", "/api/top", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "application/json");
	assert_complete(&r);
	cr_assert(body_has(&r, "\"functions\":[{\"name\":\"fake_leaf_a\""), "%s", r.body);
	cr_assert(body_has(&r, "\"total_samples\":10"), "%s", r.body);
	/* The default range: the hour up to now. */
	cr_assert_eq(hist.end_ns - hist.start_ns, 3600 * 1000000000LL);
	cr_assert_lt(llabs(hist.end_ns - now), 5 * 1000000000LL);
	resp_free(&r);

	http(srv__port(s), "GET", "/api/top?limit=1&sort=total", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	cr_assert(body_has(&r, "\"functions\":[{\"name\":\"fake_root\""), "%s", r.body);
	cr_assert(!body_has(&r, "fake_mid"), "limit=1 ignored: %s", r.body);
	resp_free(&r);

	http(srv__port(s), "GET", "/api/processes?start=1763694720&end=2025-11-21T03:22:00Z", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	cr_assert(body_has(&r, "{\"pid\":42,\"comm\":\"fakeproc\",\"samples\":10,"), "%s", r.body);
	cr_assert_eq(hist.start_ns, 1763694720LL * 1000000000LL);
	cr_assert_eq(hist.end_ns, 1763695320LL * 1000000000LL);
	resp_free(&r);

	/* Filters apply: another comm, another container. */
	http(srv__port(s), "GET", "/api/processes?comm=other", &r);
	cr_assert_eq(r.status, 200);
	cr_assert(body_has(&r, "\"processes\":[]"), "%s", r.body);
	resp_free(&r);
	http(srv__port(s), "GET", "/api/top?container=0123456789abcdef", &r);
	cr_assert_eq(r.status, 200);
	cr_assert(body_has(&r, "\"functions\":[]"), "%s", r.body);
	resp_free(&r);

	http(srv__port(s), "GET",
	     "/api/timeseries?start=1763694720&end=1763698320&pid=42&comm=fakeproc&container="
	     "0123456789ab",
	     &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	assert_header(&r, "Content-Type", "application/json");
	cr_assert(body_has(&r, "\"points\":[{\"time\":1763694720.0,\"duration\":10.0,"
			       "\"samples\":500,\"cpu_seconds\":5.0,\"cores\":0.5}]"),
		  "%s", r.body);
	cr_assert_eq(hist.series, 1);
	cr_assert_eq(hist.f.pid, 42);
	cr_assert(hist.had_comm && hist.had_container, "filters did not reach the source");
	resp_free(&r);
	srv__stop(s);
}

Test(server, api_bad_parameters_are_400)
{
	static const char *const bad[] = {
		"/api/top?limit=-1",
		"/api/top?limit=abc",
		"/api/top?limit=100001",
		"/api/top?sort=name",
		"/api/processes?container=XYZ",
		"/api/processes?container=0123456789a", /* 11 digits */
		"/api/timeseries?start=yesterday",
		"/api/timeseries?start=1763698320&end=1763694720",
		"/api/timeseries?pid=0",
		"/folded?seconds=1&container=not-hex-at-all",
		"/debug/pprof/profile?container=0123456789ABCDEF",
	};
	struct srv *s = start_history_server();

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct http_resp r;

		http(srv__port(s), "GET", bad[i], &r);
		assert_one_line_text(&r, 400);
		resp_free(&r);
	}
	cr_assert_eq(hist.queries + hist.series, 0, "a bad request reached the source");
	srv__stop(s);
}

Test(server, api_without_history_is_400)
{
	static const char *const paths[] = {"/api/top", "/api/processes", "/api/timeseries"};
	struct srv *s = start_server(); /* no query, no series */

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct http_resp r;

		http(srv__port(s), "GET", paths[i], &r);
		assert_one_line_text(&r, 400);
		cr_assert(body_has(&r, "no history"), "%s", r.body);
		resp_free(&r);
	}
	srv__stop(s);
}

/* container= on a live window: the fake process is in no container, so nothing is left. */
Test(server, container_filter_on_profile_routes)
{
	struct srv *s = start_server();
	struct http_resp r;

	http(srv__port(s), "GET", "/folded?seconds=1&container=0123456789ab", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	cr_assert_eq(r.body_len, 0, "%s", r.body);
	resp_free(&r);
	http(srv__port(s), "GET", "/folded?seconds=1", &r);
	cr_assert_gt(r.body_len, 0);
	resp_free(&r);
	srv__stop(s);
}

Test(server, api_requests_are_counted)
{
	struct srv *s = start_history_server();
	struct srv_stats st;
	struct http_resp r;

	http(srv__port(s), "GET", "/api/top", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/api/processes", &r);
	resp_free(&r);
	http(srv__port(s), "GET", "/api/timeseries?limit=x", &r);
	resp_free(&r);
	srv__stats(s, &st);
	cr_assert_eq(st.requests[SRV_ROUTE_API_TOP][SRV_STATUS_200], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_API_PROCESSES][SRV_STATUS_200], 1);
	cr_assert_eq(st.requests[SRV_ROUTE_API_TIMESERIES][SRV_STATUS_400], 1);
	http(srv__port(s), "GET", "/metrics", &r);
	cr_assert(body_has(&r, "bpfprof_http_requests_total{route=\"/api/top\",code=\"200\"} 1\n"),
		  "%s", r.body);
	cr_assert(body_has(&r, "bpfprof_http_requests_total{route=\"/api/timeseries\",code="
			       "\"400\"} 1\n"),
		  "%s", r.body);
	resp_free(&r);
	srv__stop(s);
}

/* ---- bearer token -------------------------------------------------------------- */

/* A request with extra header lines (each ending in \r\n). */
static void http_with(int port, const char *method, const char *target, const char *extra,
		      struct http_resp *r)
{
	char req[4096];
	int n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test_server\r\n%s"
		     "Connection: close\r\n\r\n",
		     method, target, extra);
	cr_assert(n > 0 && (size_t)n < sizeof(req));
	http_raw(port, req, (size_t)n, r);
}

static char *write_token_file(const char *dir, const char *name, const char *data, mode_t mode)
{
	char *path = NULL;
	FILE *f;

	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(data, f);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
	return path;
}

Test(server, token_file_rules)
{
	static const struct {
		const char *data;
		mode_t mode;
		int err;
		const char *want;
	} cases[] = {
		{"s3cret-Token_0.9~+/=\n", 0600, 0, "s3cret-Token_0.9~+/="},
		{"s3cret\r\n", 0400, 0, "s3cret"},
		{"s3cret", 0600, 0, "s3cret"},
		{"s3cret\n\n", 0600, 0, "s3cret"},
		{"", 0600, -EINVAL, NULL},
		{"\n", 0600, -EINVAL, NULL},
		{"s3cret\n", 0640, -EPERM, NULL},
		{"s3cret\n", 0604, -EPERM, NULL},
		{"s3cret\n", 0644, -EPERM, NULL},
		{"two words\n", 0600, -EINVAL, NULL},
		{"tab\there\n", 0600, -EINVAL, NULL},
		{"line1\nline2\n", 0600, -EINVAL, NULL},
	};
	char *dir = test_tmp_dir("token");
	char *tok;
	const char *why;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *path = write_token_file(dir, "token", cases[i].data, cases[i].mode);
		int err = srv_read_token_file(path, &tok, &why);

		cr_expect_eq(err, cases[i].err, "case %zu: %d (%s)", i, err, why ? why : "");
		if (!err) {
			cr_expect_str_eq(tok, cases[i].want, "case %zu", i);
			free(tok);
		} else {
			cr_expect_null(tok);
			cr_expect(why && *why, "case %zu: no reason", i);
		}
		unlink(path);
		free(path);
	}
	{
		char big[5000];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		char *path = write_token_file(dir, "big", big, 0600);

		cr_expect_eq(srv_read_token_file(path, &tok, &why), -EFBIG);
		unlink(path);
		free(path);
	}
	cr_expect_eq(srv_read_token_file("/nonexistent/token", &tok, &why), -ENOENT);
	cr_expect_eq(srv_read_token_file(dir, &tok, &why), -EINVAL, "a directory");
	test_rm_tree(dir);
}

Test(server, token_protects_every_route_but_healthz)
{
	static const char *const paths[] = {
		"/",
		"/debug/pprof/",
		"/folded?seconds=1",
		"/debug/pprof/profile?seconds=1",
		"/flamegraph.svg?seconds=1",
		"/metrics",
		"/api/top",
		"/nope",
	};
	static const char *const wrong[] = {
		"",
		"Authorization: Bearer s3cre\r\n",
		"Authorization: Bearer s3cret2\r\n",
		"Authorization: Bearer S3CRET\r\n",
		"Authorization: Basic czNjcmV0\r\n",
		"Authorization: s3cret\r\n",
		"Authorization: Bearer\r\n",
	};
	const struct srv_opts o = {.token = "s3cret"};
	struct srv *s = srv__start_opts("127.0.0.1:0", &fake_src, &o);
	struct srv_stats st;
	struct http_resp r;

	cr_assert_not_null(s);
	http(srv__port(s), "GET", "/healthz", &r);
	cr_assert_eq(r.status, 200, "/healthz must stay open: %s", r.headers);
	resp_free(&r);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		for (size_t j = 0; j < ARRAY_SIZE(wrong); j++) {
			http_with(srv__port(s), "GET", paths[i], wrong[j], &r);
			assert_one_line_text(&r, 401);
			assert_header(&r, "WWW-Authenticate", "Bearer realm=\"bpfprof\"");
			resp_free(&r);
		}
	cr_assert_eq(fake.calls, 0, "an unauthorized request opened a window");
	http_with(srv__port(s), "POST", "/folded", "", &r);
	cr_assert_eq(r.status, 401, "methods are checked after the token");
	resp_free(&r);

	http_with(srv__port(s), "GET", "/folded?seconds=1", "Authorization: Bearer s3cret\r\n", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	cr_assert_gt(r.body_len, 0);
	resp_free(&r);
	/* The scheme is case-insensitive (RFC 9110, 11.1). */
	http_with(srv__port(s), "GET", "/metrics", "Authorization: bearer s3cret\r\n", &r);
	cr_assert_eq(r.status, 200, "%s", r.headers);
	cr_assert(body_has(&r, "route=\"/folded\",code=\"401\""), "%s", r.body);
	resp_free(&r);
	srv__stats(s, &st);
	cr_assert_eq(st.requests[SRV_ROUTE_OTHER][SRV_STATUS_401], ARRAY_SIZE(wrong));
	cr_assert_eq(srv_status_code(SRV_STATUS_401), 401);
	srv__stop(s);
}

/* ---- Accept-Encoding ------------------------------------------------------------ */

Test(server, choose_coding)
{
	static const struct {
		const char *accept;
		enum srv_coding want;
	} cases[] = {
		{NULL, SRV_CODING_IDENTITY},
		{"", SRV_CODING_IDENTITY},
		{"identity", SRV_CODING_IDENTITY},
		{"gzip", SRV_CODING_GZIP},
		{"GZip", SRV_CODING_GZIP},
		{"x-gzip", SRV_CODING_GZIP},
		{"zstd", SRV_CODING_ZSTD},
		{"gzip, deflate, br, zstd", SRV_CODING_ZSTD}, /* a browser's: tie, zstd first */
		{"gzip, deflate, br", SRV_CODING_GZIP},
		{"br", SRV_CODING_IDENTITY},
		{"deflate", SRV_CODING_IDENTITY},
		{"zstd;q=0.5, gzip", SRV_CODING_GZIP},
		{"zstd;q=0.5, gzip;q=0.4", SRV_CODING_ZSTD},
		{"gzip;q=0", SRV_CODING_IDENTITY},
		{"zstd;q=0, gzip;q=0.001", SRV_CODING_GZIP},
		{"gzip;q=0.5, identity", SRV_CODING_IDENTITY},
		{"gzip;q=1.0, identity;q=0.5", SRV_CODING_GZIP},
		{"*", SRV_CODING_ZSTD},
		{"*;q=0.3, zstd;q=0.2", SRV_CODING_GZIP},
		{"*;q=0", SRV_CODING_IDENTITY},
		{"gzip ; q=0.8 , zstd ; q=0.9", SRV_CODING_ZSTD},
		{"gzip;Q=0.8, zstd;q=0.7", SRV_CODING_GZIP},
		{"zstd;q=2, gzip", SRV_CODING_GZIP}, /* a malformed q drops the item */
		{"zstd;q=abc", SRV_CODING_IDENTITY},
		{"zstd;q=0.12345", SRV_CODING_IDENTITY},
		{"gzip;level=9;q=0.9", SRV_CODING_GZIP},
		{",,,gzip,,", SRV_CODING_GZIP},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(srv_choose_coding(cases[i].accept), cases[i].want, "'%s' gave %s",
			     cases[i].accept ? cases[i].accept : "(none)",
			     srv_coding_name(srv_choose_coding(cases[i].accept)));
}

static void decompress_body(const struct http_resp *r, const char *coding, struct strbuf *out)
{
	strbuf_reset(out);
	if (!strcmp(coding, "gzip")) {
		z_stream zs = {0};
		char buf[65536];
		int ret;

		cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
		zs.next_in = (Bytef *)r->body;
		zs.avail_in = (uInt)r->body_len;
		do {
			zs.next_out = (Bytef *)buf;
			zs.avail_out = sizeof(buf);
			ret = inflate(&zs, Z_NO_FLUSH);
			cr_assert(ret == Z_OK || ret == Z_STREAM_END, "inflate: %d", ret);
			strbuf_add(out, buf, sizeof(buf) - zs.avail_out);
		} while (ret != Z_STREAM_END);
		inflateEnd(&zs);
	} else {
		unsigned long long n = ZSTD_getFrameContentSize(r->body, r->body_len);

		cr_assert(n != ZSTD_CONTENTSIZE_ERROR && n != ZSTD_CONTENTSIZE_UNKNOWN);
		strbuf_grow(out, n + 1);
		cr_assert_eq(ZSTD_decompress(out->buf, n, r->body, r->body_len), n);
		out->len = n;
	}
	strbuf_add(out, "", 0);
}

Test(server, text_and_json_are_compressed_on_request)
{
	static const char *const paths[] = {
		"/folded?seconds=1",
		"/flamegraph.svg?seconds=1",
		"/metrics",
		"/api/top",
		"/",
		"/healthz",
		"/nope",
	};
	static const char *const codings[] = {"gzip", "zstd"};
	struct srv *s = start_history_server();
	struct strbuf plain = STRBUF_INIT, got = STRBUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		struct http_resp r;
		char hdr[128], buf[64];

		/* Identity is the default, and says that the answer varies. */
		http(srv__port(s), "GET", paths[i], &r);
		cr_assert_null(header(&r, "Content-Encoding", buf, sizeof(buf)), "%s", paths[i]);
		assert_header(&r, "Vary", "Accept-Encoding");
		strbuf_reset(&plain);
		strbuf_add(&plain, r.body, r.body_len);
		resp_free(&r);
		for (size_t c = 0; c < ARRAY_SIZE(codings); c++) {
			snprintf(hdr, sizeof(hdr), "Accept-Encoding: %s\r\n", codings[c]);
			http_with(srv__port(s), "GET", paths[i], hdr, &r);
			assert_header(&r, "Content-Encoding", codings[c]);
			assert_header(&r, "Vary", "Accept-Encoding");
			assert_complete(&r);
			decompress_body(&r, codings[c], &got);
			/*
			 * The SVG's subtitle, /metrics' counters and the default range of
			 * /api/top change between requests.
			 */
			if (!strcmp(paths[i], "/flamegraph.svg?seconds=1") ||
			    !strcmp(paths[i], "/api/top"))
				cr_assert(strstr(got.buf, "fake_leaf_a"), "%s", paths[i]);
			else if (!strcmp(paths[i], "/metrics"))
				cr_assert(strstr(got.buf, "bpfprof_http_requests_total{"), "%s",
					  got.buf);
			else
				cr_assert_str_eq(got.buf, plain.buf, "%s, %s", paths[i],
						 codings[c]);
			resp_free(&r);
		}
	}
	strbuf_release(&plain);
	strbuf_release(&got);
	srv__stop(s);
}

/* pprof stays as it is: gzip inside, no Content-Encoding, whatever the client accepts. */
Test(server, pprof_is_never_reencoded)
{
	struct srv *s = start_server();
	struct http_resp r;
	char buf[64];

	http_with(srv__port(s), "GET", "/debug/pprof/profile?seconds=1",
		  "Accept-Encoding: zstd, gzip\r\n", &r);
	cr_assert_eq(r.status, 200);
	cr_assert_null(header(&r, "Content-Encoding", buf, sizeof(buf)));
	assert_fake_pprof(&r);
	resp_free(&r);
	srv__stop(s);
}

/* ---- /metrics ---------------------------------------------------------------------- */

static void fake_metrics(void *ctx, struct strbuf *out)
{
	(void)ctx;
	strbuf_adds(out, "# HELP fake_samples_total Samples.\n# TYPE fake_samples_total counter\n"
			 "fake_samples_total 42\n");
}

Test(server, metrics_are_strict_prometheus_text)
{
	static const char *const paths[] = {
		"/api/top",	     "/api/processes", "/api/timeseries", "/api/top?limit=x",
		"/folded?seconds=1", "/healthz",       "/nope",
	};
	struct srv_source src = fake_src;
	struct prom_result pr;
	struct http_resp r;
	struct srv *s;

	src.query = fake_query;
	src.series = fake_series;
	src.metrics = fake_metrics;
	s = srv__start("127.0.0.1:0", &src);
	cr_assert_not_null(s);
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		http(srv__port(s), "GET", paths[i], &r);
		resp_free(&r);
	}
	http(srv__port(s), "GET", "/metrics", &r);
	cr_assert_eq(r.status, 200);
	assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	cr_assert_eq(prom_check(r.body, &pr), 0, "%s in:\n%s", pr.error, r.body);
	cr_assert_not_null(prom_find(&pr, "fake_samples_total"));
	cr_assert_eq(prom_find(&pr, "bpfprof_http_requests_total")->samples, ARRAY_SIZE(paths));
	cr_assert_str_eq(prom_find(&pr, "bpfprof_http_requests_total")->type, "counter");
	for (size_t i = 0; i < 3; i++) {
		char want[128];

		snprintf(want, sizeof(want),
			 "bpfprof_http_requests_total{route=\"%s\",code=\"200\"} 1\n", paths[i]);
		cr_assert(body_has(&r, want), "no %s", want);
	}
	cr_assert(body_has(&r, "{route=\"/api/top\",code=\"400\"} 1\n"));
	cr_assert(body_has(&r, "{route=\"other\",code=\"404\"} 1\n"));
	prom_result__free(&pr);
	resp_free(&r);
	srv__stop(s);
}
