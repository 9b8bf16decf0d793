// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/push.c (suite push): the pure parts table-driven
 * (verdicts, backoff, label and name checks, the ingest URL, the bounded
 * queue), then the pusher thread against the local test receiver
 * (tests/common/ingest_rx.c, 127.0.0.1 only) in its in-memory mode, with
 * scripted 5xx/429/4xx answers and a receiver that is not there.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profiler/push.h"
#include "tests/common/ingest_rx.h"
#include "tests/common/pprof_read.h"
#include "tests/common/testutil.h"

#define SEC 1000000000LL

Test(push, classify)
{
	static const struct {
		int curl;
		long status;
		enum prof_push_verdict want;
	} cases[] = {
		{CURLE_OK, 200, PROF_PUSH_SENT},
		{CURLE_OK, 204, PROF_PUSH_SENT},
		{CURLE_OK, 429, PROF_PUSH_RETRY},
		{CURLE_OK, 500, PROF_PUSH_RETRY},
		{CURLE_OK, 502, PROF_PUSH_RETRY},
		{CURLE_OK, 503, PROF_PUSH_RETRY},
		{CURLE_OK, 400, PROF_PUSH_PERMANENT},
		{CURLE_OK, 401, PROF_PUSH_PERMANENT},
		{CURLE_OK, 404, PROF_PUSH_PERMANENT},
		{CURLE_OK, 413, PROF_PUSH_PERMANENT},
		{CURLE_OK, 422, PROF_PUSH_PERMANENT},
		{CURLE_OK, 301, PROF_PUSH_PERMANENT}, /* redirects are not followed */
		{CURLE_COULDNT_CONNECT, 0, PROF_PUSH_RETRY},
		{CURLE_OPERATION_TIMEDOUT, 0, PROF_PUSH_RETRY},
		{CURLE_COULDNT_RESOLVE_HOST, 0, PROF_PUSH_RETRY},
		{CURLE_RECV_ERROR, 0, PROF_PUSH_RETRY},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(prof_push_classify(cases[i].curl, cases[i].status), cases[i].want,
			     "curl %d status %ld", cases[i].curl, cases[i].status);
}

Test(push, backoff_doubles_with_jitter_and_is_capped)
{
	static const struct {
		unsigned int attempt, min_ms, max_ms;
		uint64_t lo, hi; /* the delay is in [lo, hi] for every rnd */
	} cases[] = {
		{1, 1000, 30000, 500, 1000},
		{2, 1000, 30000, 1000, 2000},
		{3, 1000, 30000, 2000, 4000},
		{5, 1000, 30000, 8000, 16000},
		{6, 1000, 30000, 15000, 30000}, /* 32 s nominal, capped */
		{40, 1000, 30000, 15000, 30000}, /* no overflow at large attempts */
		{1, 10, 40, 5, 10},
		{9, 10, 40, 20, 40},
		{1, 100, 50, 50, 100}, /* a cap under the minimum: the minimum */
	};
	static const uint32_t rnds[] = {0, 1, 7, 499, 500, 501, 12345, 0x7fffffff, 0xffffffff};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t lo = UINT64_MAX, hi = 0;

		for (size_t r = 0; r < ARRAY_SIZE(rnds); r++) {
			uint64_t d = prof_push_backoff_ms(cases[i].attempt, cases[i].min_ms,
							  cases[i].max_ms, rnds[r]);

			cr_expect(d >= cases[i].lo && d <= cases[i].hi,
				  "attempt %u rnd %u: %llu ms not in [%llu, %llu]",
				  cases[i].attempt, rnds[r], (unsigned long long)d,
				  (unsigned long long)cases[i].lo, (unsigned long long)cases[i].hi);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		/* Jitter: different random numbers give different delays. */
		cr_expect_lt(lo, hi, "attempt %u: no jitter", cases[i].attempt);
	}
	/* rnd 0 gives the floor, d/2: exact values. */
	cr_expect_eq(prof_push_backoff_ms(1, 1000, 30000, 0), 500);
	cr_expect_eq(prof_push_backoff_ms(4, 1000, 30000, 0), 4000);
	cr_expect_eq(prof_push_backoff_ms(4, 1000, 30000, 4000), 8000);
}

Test(push, labels_are_checked)
{
	static const struct {
		const char *kv;
		bool ok;
	} cases[] = {
		{"env=prod", true},
		{"region=eu-west-1", true},
		{"_x=1", true},
		{"k8s_node=node-1.example", true},
		{"path=/a/b:c", true},
		{"hostname=other", true}, /* replaces the default one */
		{"utf8=h\xc3\xa9", true},
		{"env", false},
		{"=v", false},
		{"env=", false},
		{"1x=1", false},
		{"x-y=1", false},
		{"x.y=1", false},
		{"__name__=x", false},
		{"__x=1", false},
		{"service_name=x", false},
		{"env=a,b", false},
		{"env=a}", false},
		{"env={a", false},
		{"env=a=b", false},
		{"env=\"a\"", false},
		{"env=a\\b", false},
		{"env=a\nb", false},
		{"env= a", false},
		{"env=a ", false},
	};
	char why[128];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		why[0] = '\0';
		cr_expect_eq(prof_push_check_label(cases[i].kv, why, sizeof(why)) == 0, cases[i].ok,
			     "'%s': %s", cases[i].kv, why);
		if (!cases[i].ok)
			cr_expect(why[0], "'%s' refused without a reason", cases[i].kv);
	}
	cr_expect_eq(prof_push_check_service_name("node-1.example.com"), 0);
	cr_expect_eq(prof_push_check_service_name("team/app_2"), 0);
	cr_expect_eq(prof_push_check_service_name(""), -EINVAL);
	cr_expect_eq(prof_push_check_service_name("a b"), -EINVAL);
	cr_expect_eq(prof_push_check_service_name("a{b"), -EINVAL);
	cr_expect_eq(prof_push_check_service_name("a:b"), -EINVAL);
}

Test(push, tenant_ids_are_checked)
{
	static const struct {
		const char *id;
		bool ok;
		const char *what;
	} cases[] = {
		{"1", true, "a number"},
		{"123456", true, "Grafana Cloud's instance ids are numbers"},
		{"team-a", true, "letters and '-'"},
		{"Org_1.prod", true, "'_' and '.'"},
		{"a!b*c'd(e)", true, "the other punctuation dskit allows"},
		{"...", true, "only . and .. are refused, as path segments"},
		{"", false, "empty"},
		{".", false, "a path segment"},
		{"..", false, "a path segment"},
		{"a b", false, "a space"},
		{"a|b", false, "dskit's separator of several tenants"},
		{"a/b", false, "a slash"},
		{"a:b", false, "a colon"},
		{"a\tb", false, "a tab"},
		{"a\nb", false, "a newline: header injection"},
		{"\x7f", false, "DEL"},
		{"h\xc3\xa9", false, "not ASCII"},
	};
	char max[152];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(prof_push_check_tenant(cases[i].id) == 0, cases[i].ok, "case %zu: %s",
			     i, cases[i].what);
	memset(max, 'x', 150);
	max[150] = '\0';
	cr_expect_eq(prof_push_check_tenant(max), 0, "150 characters");
	max[150] = 'x';
	max[151] = '\0';
	cr_expect_eq(prof_push_check_tenant(max), -EINVAL, "151 characters");
	cr_expect_eq(prof_push_check_tenant(NULL), -EINVAL);
}

Test(push, ingest_url)
{
	static const struct {
		const char *base;
		int64_t start, end;
		const char *want;
	} cases[] = {
		/* Intervals end a few ms after a wall-clock multiple: nearest second. */
		{"http://h:4040", 1700000010003000000LL, 1700000020004000000LL,
		 "http://h:4040/ingest?name=svc%7Bhostname%3Dn1%2Cenv%3Dprod%7D&from=1700000010"
		 "&until=1700000020&format=pprof&spyName=bpfprof&sampleRate=99"},
		/* The agent's first interval, started just before a boundary. */
		{"http://h:4040/", 1700000009700000000LL, 1700000010003000000LL,
		 "http://h:4040/ingest?name=svc%7Bhostname%3Dn1%2Cenv%3Dprod%7D&from=1700000009"
		 "&until=1700000010&format=pprof&spyName=bpfprof&sampleRate=99"},
		/* Its last one, stopped just after a boundary. */
		{"http://h:4040", 1700000010002000000LL, 1700000010300000000LL,
		 "http://h:4040/ingest?name=svc%7Bhostname%3Dn1%2Cenv%3Dprod%7D&from=1700000010"
		 "&until=1700000011&format=pprof&spyName=bpfprof&sampleRate=99"},
		{"https://u:p@x.example/prefix//", 2 * SEC, 4 * SEC,
		 "https://u:p@x.example/prefix/ingest?name=svc%7Bhostname%3Dn1%2Cenv%3Dprod%7D"
		 "&from=2&until=4&format=pprof&spyName=bpfprof&sampleRate=99"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct strbuf sb = STRBUF_INIT;

		prof_push_ingest_url(cases[i].base, "svc{hostname=n1,env=prod}", cases[i].start,
				     cases[i].end, 99, &sb);
		cr_expect_str_eq(sb.buf, cases[i].want);
		strbuf_release(&sb);
	}
	/* Back-to-back intervals give back-to-back second ranges. */
	{
		int64_t t = 1700000000002000000LL, prev_until = -1;

		for (int k = 0; k < 50; k++) {
			int64_t next =
				(1700000000LL + 2 * (k + 1)) * SEC + (k * 7919 % 30) * 1000000;
			struct strbuf sb = STRBUF_INIT;
			long long from, until;

			prof_push_ingest_url("http://h", "s{}", t, next, 0, &sb);
			cr_assert_eq(sscanf(strstr(sb.buf, "from="), "from=%lld&until=%lld", &from,
					    &until),
				     2);
			if (prev_until >= 0)
				cr_expect_eq(from, prev_until, "gap or overlap at %d", k);
			prev_until = until;
			t = next;
			strbuf_release(&sb);
		}
	}
}

static struct prof_push_item item(int64_t t, bool with_body)
{
	struct prof_push_item it = {.start_ns = t, .end_ns = t + 1};

	if (with_body) {
		it.body = xmalloc(8);
		it.len = 8;
	}
	return it;
}

Test(push, queue_is_bounded_and_drops_the_oldest)
{
	static const struct {
		size_t max;
		const char *ops; /* p = put, t = take */
		size_t want_len, want_dropped;
		int64_t want_next; /* start of the next take, -1 when empty */
	} cases[] = {
		{3, "ppp", 3, 0, 0},
		{3, "pppp", 3, 1, 1},
		{3, "pppppp", 3, 3, 3},
		{1, "ppp", 1, 2, 2},
		{3, "ptptpt", 0, 0, -1},
		{2, "ppptpp", 2, 2, 3}, /* 0 dropped, 1 taken, 2 dropped, 3 and 4 left */
		{4, "pptppppt", 3, 1, 3}, /* wraps around the ring */
		{2, "", 0, 0, -1},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct prof_push_queue *q = prof_push_queue__new(cases[i].max);
		struct prof_push_item it;
		size_t dropped = 0;
		int64_t t = 0, last = -1;

		for (const char *op = cases[i].ops; *op; op++) {
			if (*op == 'p') {
				struct prof_push_item n = item(t, t % 2);

				dropped += prof_push_queue__put(q, &n);
				t++;
			} else if (prof_push_queue__take(q, &it)) {
				cr_expect_gt(it.start_ns, last, "case %zu: out of order", i);
				last = it.start_ns;
				free(it.body);
			}
		}
		cr_expect_eq(prof_push_queue__len(q), cases[i].want_len, "case %zu", i);
		cr_expect_eq(dropped, cases[i].want_dropped, "case %zu", i);
		if (cases[i].want_next < 0) {
			cr_expect_not(prof_push_queue__take(q, &it), "case %zu", i);
		} else {
			cr_assert(prof_push_queue__take(q, &it), "case %zu", i);
			cr_expect_eq(it.start_ns, cases[i].want_next, "case %zu", i);
			free(it.body);
		}
		cr_expect_eq(prof_push_queue__free(q) + (cases[i].want_next >= 0),
			     cases[i].want_len, "case %zu", i);
	}
	prof_push_queue__free(NULL);
}

/* ---- the pusher thread against the local receiver --------------------------------- */

static struct prof_profile *interval_at(int64_t start_s)
{
	struct prof_profile *p = pprof_test_profile();

	p->time_nanos = start_s * SEC + 3000000; /* a few ms after the boundary, as the agent */
	p->duration_nanos = 2 * SEC;
	return p;
}

/* Waits up to @ms for the pusher to have nothing queued. */
static void wait_idle(struct prof_push *p, int ms, struct prof_push_stats *st)
{
	for (int i = 0; i < ms / 10; i++) {
		prof_push__stats(p, st);
		if (!st->queued)
			return;
		usleep(10000);
	}
	prof_push__stats(p, st);
}

/* 503 and 429 are retried (the same interval, in order), 400 is not; every body is the pprof. */
Test(push, retries_5xx_and_429_fails_4xx_in_order, .timeout = 30)
{
	static const int script[] = {503, 429, 200, 400, 200};
	struct test_ingest_rx *rx = test_ingest_rx__new(0);
	const char *labels[] = {"env=test", "team=perf"};
	char url[64];
	struct prof_push_opts o = {.url = url,
				   .service_name = "unit-svc",
				   .hostname = "host-1",
				   .labels = labels,
				   .nlabels = 2,
				   .tenant = "team-1",
				   .sample_rate = 99,
				   .backoff_min_ms = 10,
				   .backoff_max_ms = 40};
	struct prof_push_stats st;
	struct prof_push *p;
	struct test_ingest_req rq;
	size_t n, acc;

	cr_assert_eq(test_ingest_rx__listen(rx), 0);
	test_ingest_rx__script(rx, script, ARRAY_SIZE(script));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", test_ingest_rx__port(rx));
	p = prof_push__start(&o);
	cr_assert_not_null(p);
	for (int k = 0; k < 3; k++) {
		struct prof_profile *iv = interval_at(1700000000 + 2 * k);

		cr_assert_eq(prof_push__submit(p, iv, /*in_store=*/false), 0);
		prof_profile__free(iv);
	}
	wait_idle(p, 10000, &st);
	cr_expect_eq(st.sent, 2);
	cr_expect_eq(st.failed, 1);
	cr_expect_eq(st.retries, 2);
	cr_expect_eq(st.dropped, 0);
	cr_expect_gt(st.bytes_sent, 0);
	cr_expect_gt(st.last_success_ns, 0);

	n = test_ingest_rx__count(rx, &acc);
	cr_assert_eq(n, 5);
	cr_expect_eq(acc, 2);
	for (size_t i = 0; i < n; i++) {
		/* Requests 0-2 carry interval 0, 3 interval 1, 4 interval 2. */
		static const char *const from[] = {"1700000000", "1700000000", "1700000000",
						   "1700000002", "1700000004"};
		Perftools__Profiles__Profile *pb;

		cr_assert(test_ingest_rx__get(rx, i, &rq));
		cr_expect_str_eq(rq.method, "POST");
		cr_expect_str_eq(rq.path, "/ingest");
		cr_expect_str_eq(rq.name, "unit-svc{hostname=host-1,env=test,team=perf}");
		cr_expect_str_eq(rq.format, "pprof");
		cr_expect_str_eq(rq.from, from[i], "request %zu", i);
		cr_expect_eq(atoll(rq.until), atoll(from[i]) + 2, "request %zu", i);
		cr_expect_str_eq(rq.rate, "99");
		cr_expect_str_eq(rq.spy, "bpfprof");
		cr_expect_str_eq(rq.content_type, "application/octet-stream");
		cr_expect_str_eq(rq.org_id, "team-1", "request %zu", i); /* retries too */
		cr_assert_gt(rq.body.len, 2);
		cr_expect(rq.body.buf[0] == '\x1f' && rq.body.buf[1] == '\x8b', "not gzip");
		pb = pprof_read(rq.body.buf, rq.body.len);
		cr_expect_not_null(pb, "request %zu: body is not a pprof", i);
		if (pb)
			cr_expect_eq(pb->n_sample, 6, "request %zu", i);
		pprof_free(pb);
		strbuf_release(&rq.body);
	}
	prof_push__close(p, 1000);
	test_ingest_rx__free(rx);
}

/*
 * Nobody listening: intervals wait in the queue (bounded, the oldest
 * dropped and counted); when the receiver comes up on that port they all
 * arrive, in order, and none is lost beyond the bound.
 */
Test(push, queue_bound_while_down_then_delivers, .timeout = 30)
{
	struct test_ingest_rx *rx = test_ingest_rx__new(0);
	char url[64];
	struct prof_push_opts o = {.url = url,
				   .hostname = "h",
				   .queue_max = 3,
				   .backoff_min_ms = 20,
				   .backoff_max_ms = 100};
	struct prof_push_stats st;
	struct prof_push *p;
	struct test_ingest_req rq;
	size_t n, acc;
	long long prev = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_ingest_rx__port(rx));
	p = prof_push__start(&o);
	cr_assert_not_null(p);
	for (int k = 0; k < 8; k++) {
		struct prof_profile *iv = interval_at(1700000000 + 2 * k);

		prof_push__submit(p, iv, false);
		prof_profile__free(iv);
		/* The first one is in flight (and failing) before the others come. */
		for (int i = 0; k == 0 && i < 500; i++) {
			prof_push__stats(p, &st);
			if (st.retries)
				break;
			usleep(2000);
		}
	}
	usleep(300000);
	prof_push__stats(p, &st);
	cr_expect_eq(st.sent, 0);
	cr_expect_gt(st.retries, 0, "no retries while the server is down");
	/* 3 queued + the one being retried; the rest dropped and counted. */
	cr_expect_eq(st.queued, 4);
	cr_expect_eq(st.dropped, 4);

	cr_assert_eq(test_ingest_rx__listen(rx), 0);
	wait_idle(p, 10000, &st);
	cr_expect_eq(st.sent, 4);
	cr_expect_eq(st.dropped, 4);
	n = test_ingest_rx__count(rx, &acc);
	cr_expect_eq(n, 4);
	for (size_t i = 0; i < n; i++) {
		cr_assert(test_ingest_rx__get(rx, i, &rq));
		cr_expect_gt(atoll(rq.from), prev, "out of order");
		cr_expect_str_eq(rq.org_id, "", "a tenant header without --push-tenant");
		prev = atoll(rq.from);
		strbuf_release(&rq.body);
	}
	/* The first one was in flight when the others were queued; the newest 3 follow it. */
	cr_expect_eq(prev, 1700000000 + 2 * 7);
	cr_expect_str_eq(rq.name, "h{hostname=h}");
	prof_push__close(p, 1000);
	test_ingest_rx__free(rx);
}

/* At exit, what cannot be delivered within the flush time is counted as dropped. */
Test(push, close_gives_up_after_flush_time, .timeout = 30)
{
	struct test_ingest_rx *rx = test_ingest_rx__new(0); /* never listens */
	char url[64];
	struct prof_push_opts o = {.url = url, .hostname = "h", .backoff_min_ms = 50};
	struct prof_push *p;
	struct prof_profile *iv = interval_at(1700000000);
	uint64_t t0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_ingest_rx__port(rx));
	p = prof_push__start(&o);
	cr_assert_not_null(p);
	prof_push__submit(p, iv, false);
	prof_push__submit(p, iv, false);
	prof_profile__free(iv);
	usleep(100000);
	t0 = now_mono_ns();
	{
		struct strbuf m = STRBUF_INIT;

		prof_push__metrics(p, &m);
		cr_expect(strstr(m.buf, "bpfprof_push_intervals_total{result=\"sent\"} 0\n"));
		cr_expect(strstr(m.buf, "bpfprof_push_queue_length 2\n"), "%s", m.buf);
		cr_expect(strstr(m.buf, "# TYPE bpfprof_push_retries_total counter\n"));
		strbuf_release(&m);
	}
	prof_push__close(p, 500);
	cr_expect_lt(now_mono_ns() - t0, 3 * (uint64_t)SEC, "close took too long");
	test_ingest_rx__free(rx);
}

/* @len bytes of @data in @dir/@name, with @mode; returns the path (free it). */
static char *write_file_mode(const char *dir, const char *name, const char *data, size_t len,
			     mode_t mode)
{
	char *path = NULL;
	int fd;

	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	cr_assert_eq(chmod(path, mode), 0);
	return path;
}

Test(push, auth_file_rules)
{
	static const struct {
		const char *data;
		size_t len; /* 0 = strlen(data) */
		mode_t mode;
		int err;
		const char *want;
	} cases[] = {
		{"12345:glc_Token+/=\n", 0, 0600, 0, "12345:glc_Token+/="},
		{"user:pass word:with colons\n", 0, 0400, 0, "user:pass word:with colons"},
		{"user:secret\r\n", 0, 0600, 0, "user:secret"},
		{"bearer-Token_0.9~+/=", 0, 0600, 0, "bearer-Token_0.9~+/="},
		{"tok\n", 0, 0600, 0, "tok"},
		{"", 0, 0600, -EINVAL, NULL},
		{"\n", 0, 0600, -EINVAL, NULL},
		{"tok\n\n", 0, 0600, -EINVAL, NULL}, /* only one newline is removed */
		{"user:pass\nmore\n", 0, 0600, -EINVAL, NULL},
		{"tok\r", 0, 0600, -EINVAL, NULL}, /* a CR alone is no newline */
		{"tok\0en\n", 7, 0600, -EINVAL, NULL},
		{"two words\n", 0, 0600, -EINVAL, NULL},
		{"tab\there\n", 0, 0600, -EINVAL, NULL},
		{":password\n", 0, 0600, -EINVAL, NULL},
		{"user:\n", 0, 0600, -EINVAL, NULL},
		{"a user:password\n", 0, 0600, -EINVAL, NULL},
		{"user:secret\n", 0, 0640, -EPERM, NULL},
		{"user:secret\n", 0, 0644, -EPERM, NULL},
	};
	char *dir = test_tmp_dir("auth");
	char *auth;
	const char *why;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
		char *path = write_file_mode(dir, "auth", cases[i].data, len, cases[i].mode);
		int err = prof_push_read_auth_file(path, &auth, &why);

		cr_expect_eq(err, cases[i].err, "case %zu: %d (%s)", i, err, why ? why : "");
		if (!err) {
			cr_expect_str_eq(auth, cases[i].want, "case %zu", i);
			free(auth);
		} else {
			cr_expect_null(auth, "case %zu", i);
			cr_expect(why && *why, "case %zu: no reason", i);
		}
		unlink(path);
		free(path);
	}
	cr_expect_eq(prof_push_read_auth_file("/nonexistent/auth", &auth, &why), -ENOENT);
	cr_expect(why && *why);
	cr_expect_eq(prof_push_read_auth_file(dir, &auth, &why), -EINVAL, "a directory");
	test_rm_tree(dir);
}

Test(push, url_credentials_are_found)
{
	static const struct {
		const char *url;
		bool creds;
	} cases[] = {
		{"https://u:p@x.example", true},
		{"https://u@x.example/prefix", true},
		{"http://u:p%40ss@x.example:4040/", true},
		{"http://x.example", false},
		{"http://x.example:4040/a@b", false}, /* an '@' in the path */
		{"http://x.example?a=b@c", false},
		{"http://x.example#a@b", false},
		{"x.example", false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		cr_expect_eq(prof_push_url_has_credentials(cases[i].url), cases[i].creds, "%s",
			     cases[i].url);
}

/*
 * Credentials from a file reach the server as libcurl encodes them, on the
 * first request (no 401 round trip), on retries too, and never in the log.
 */
Test(push, auth_reaches_the_server_and_not_the_log, .timeout = 30)
{
	static const struct {
		const char *auth, *want;
	} cases[] = {
		{"12345:glc_pa ss:w@rd", "Basic MTIzNDU6Z2xjX3BhIHNzOndAcmQ="},
		{"glc_bearer.Token-1", "Bearer glc_bearer.Token-1"},
	};
	static const int script[] = {503, 401};
	char logpath[] = "/tmp/bpfprof-push-log-XXXXXX";
	int logfd = mkstemp(logpath), saved = dup(2);
	struct strbuf log = STRBUF_INIT;

	cr_assert_geq(logfd, 0);
	/* Every log line, debug included, goes to a file for the test to read. */
	log_level = 3;
	fflush(stderr);
	dup2(logfd, 2);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct test_ingest_rx *rx = test_ingest_rx__new(0);
		char url[64];
		struct prof_push_opts o = {.url = url,
					   .hostname = "h",
					   .auth = cases[i].auth,
					   .backoff_min_ms = 10,
					   .backoff_max_ms = 20};
		struct prof_push_stats st;
		struct test_ingest_req rq;
		struct prof_push *p;
		size_t n;

		cr_assert_eq(test_ingest_rx__listen(rx), 0);
		test_ingest_rx__script(rx, script, ARRAY_SIZE(script));
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_ingest_rx__port(rx));
		p = prof_push__start(&o);
		cr_assert_not_null(p);
		for (int k = 0; k < 2; k++) {
			struct prof_profile *iv = interval_at(1700000000 + 2 * k);

			prof_push__submit(p, iv, false);
			prof_profile__free(iv);
		}
		wait_idle(p, 10000, &st);
		cr_expect_eq(st.sent, 1, "case %zu", i);
		cr_expect_eq(st.failed, 1, "case %zu: the 401", i);
		n = test_ingest_rx__count(rx, NULL);
		cr_expect_eq(n, 3, "case %zu: a request went unanswered or was repeated", i);
		for (size_t k = 0; k < n; k++) {
			cr_assert(test_ingest_rx__get(rx, k, &rq));
			cr_expect_str_eq(rq.authorization, cases[i].want, "case %zu request %zu", i,
					 k);
			strbuf_release(&rq.body);
		}
		prof_push__close(p, 1000);
		test_ingest_rx__free(rx);
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);
	log_level = 1;
	cr_assert_eq(read_file(logpath, &log, 0), 0);
	unlink(logpath);
	cr_expect(strstr(log.buf, "basic auth") && strstr(log.buf, "bearer token"),
		  "the log was not captured: %s", log.buf);
	cr_expect(strstr(log.buf, "HTTP 401"), "the 401 was not logged: %s", log.buf);
	cr_expect_null(strstr(log.buf, "glc_"), "a secret in the log: %s", log.buf);
	cr_expect_null(strstr(log.buf, "w@rd"), "a secret in the log: %s", log.buf);
	strbuf_release(&log);
}

/* ---- the cursor: resuming after a restart ------------------------------------------ */

struct cursor_env {
	char *dir;
	struct prof_store *store;
	struct test_ingest_rx *rx;
	char url[64];
	int64_t t0; /* start of stored interval 0, in seconds */
};

/* Interval @k of the store: [t0 + 2k s + 3 ms, + 2 s). */
static int64_t iv_start(const struct cursor_env *e, int k)
{
	return (e->t0 + 2 * k) * SEC + 3000000;
}

static struct prof_push *start_pusher(const struct cursor_env *e, const char *service,
				      unsigned int queue_max)
{
	struct prof_push_opts o = {.url = e->url,
				   .service_name = service,
				   .hostname = "h",
				   .store = e->store,
				   .cursor_dir = e->dir,
				   .queue_max = queue_max,
				   .backoff_min_ms = 10,
				   .backoff_max_ms = 20};
	struct prof_push *p = prof_push__start(&o);

	cr_assert_not_null(p);
	return p;
}

/* The end the cursor file holds, 0 when there is none; its target lines in @ident. */
static int64_t cursor_end(const struct cursor_env *e, struct strbuf *ident)
{
	struct strbuf sb = STRBUF_INIT, path = STRBUF_INIT;
	int64_t end = 0;
	char *at;

	strbuf_addf(&path, "%s/push-cursor", e->dir);
	if (read_file(path.buf, &sb, 0) == 0 && (at = strstr(sb.buf, "\nend "))) {
		end = atoll(at + 5);
		if (ident) {
			strbuf_reset(ident);
			strbuf_add(ident, sb.buf, at + 1 - sb.buf);
		}
	}
	strbuf_release(&sb);
	strbuf_release(&path);
	return end;
}

/*
 * With a store and a cursor, what a previous run stored but did not push
 * goes out after a restart, in order, bounded by the queue, and only once;
 * another target (service name) starts from now; a broken cursor is
 * replaced.
 */
Test(push, cursor_resumes_stored_intervals_after_a_restart, .timeout = 30)
{
	struct cursor_env e = {0};
	struct prof_push_stats st;
	struct test_ingest_req rq;
	struct strbuf ident = STRBUF_INIT, want = STRBUF_INIT, status = STRBUF_INIT;
	struct prof_push *p;
	struct prof_profile *iv;
	struct prof_store_opts so = {0};
	int64_t now;
	size_t n;

	e.dir = test_tmp_dir("push-cursor");
	so.dir = e.dir;
	so.min_free_bytes = 1;
	e.store = prof_store__open(&so);
	cr_assert_not_null(e.store);
	e.rx = test_ingest_rx__new(0);
	cr_assert_eq(test_ingest_rx__listen(e.rx), 0);
	snprintf(e.url, sizeof(e.url), "http://127.0.0.1:%d/", test_ingest_rx__port(e.rx));
	/* Eight back-to-back intervals of a previous run, ending a minute ago. */
	e.t0 = (int64_t)(now_wall_ns() / SEC) - 76;
	for (int k = 0; k < 8; k++) {
		iv = pprof_test_profile();
		iv->time_nanos = iv_start(&e, k);
		iv->duration_nanos = 2 * SEC;
		cr_assert_eq(prof_store__append(e.store, iv), 0);
		prof_profile__free(iv);
	}

	/* First start for this target: nothing from before it is pushed; the cursor says now. */
	now = (int64_t)now_wall_ns();
	p = start_pusher(&e, "svc", 4);
	prof_push__stats(p, &st);
	cr_expect_eq(st.resumed, 0);
	cr_expect_eq(st.queued, 0);
	cr_expect_geq(cursor_end(&e, &ident), now);
	cr_expect_lt(cursor_end(&e, NULL), now + 5 * SEC);
	strbuf_addf(&want,
		    "bpfprof push cursor 1\nurl http://127.0.0.1:%d\ntenant -\nservice svc\n",
		    test_ingest_rx__port(e.rx));
	cr_expect_str_eq(ident.buf, want.buf);
	/* An accepted interval moves it to that interval's end. */
	iv = pprof_test_profile();
	iv->time_nanos = iv_start(&e, 1);
	iv->duration_nanos = 2 * SEC;
	prof_push__submit(p, iv, /*in_store=*/true);
	prof_profile__free(iv);
	wait_idle(p, 10000, &st);
	cr_expect_eq(st.sent, 1);
	cr_expect_eq(cursor_end(&e, NULL), iv_start(&e, 1) + 2 * SEC);
	prof_push__close(p, 0);

	/*
	 * A restart: intervals 2..7 end after the cursor; a queue of 4 keeps
	 * the newest 4 (the oldest 2 are dropped and counted), sent in order.
	 */
	p = start_pusher(&e, "svc", 4);
	prof_push__stats(p, &st);
	cr_expect_eq(st.resumed, 4);
	cr_expect_eq(st.dropped, 2);
	wait_idle(p, 10000, &st);
	cr_expect_eq(st.sent, 4);
	prof_push__status(p, &status);
	cr_expect(strstr(status.buf, "push_resumed 4\n"), "%s", status.buf);
	prof_push__close(p, 1000);
	n = test_ingest_rx__count(e.rx, NULL);
	cr_assert_eq(n, 5);
	for (size_t i = 1; i < n; i++) {
		cr_assert(test_ingest_rx__get(e.rx, i, &rq));
		/* Request 0 was interval 1; requests 1..4 are intervals 4..7. */
		cr_expect_eq(atoll(rq.from), e.t0 + 2 * (int64_t)(i + 3), "request %zu", i);
		cr_expect_eq(atoll(rq.until), e.t0 + 2 * (int64_t)(i + 4), "request %zu", i);
		cr_expect_gt(rq.body.len, 2, "request %zu: no profile", i);
		strbuf_release(&rq.body);
	}
	cr_expect_eq(cursor_end(&e, NULL), iv_start(&e, 7) + 2 * SEC);

	/* Again: everything was delivered, nothing is sent twice. */
	p = start_pusher(&e, "svc", 0);
	prof_push__stats(p, &st);
	cr_expect_eq(st.resumed, 0);
	prof_push__close(p, 1000);

	/* Another target (service name) does not inherit the cursor; it starts now. */
	now = (int64_t)now_wall_ns();
	p = start_pusher(&e, "other", 0);
	prof_push__stats(p, &st);
	cr_expect_eq(st.resumed, 0);
	prof_push__close(p, 1000);
	cr_expect_geq(cursor_end(&e, &ident), now);
	cr_expect(strstr(ident.buf, "\nservice other\n"), "%s", ident.buf);
	/* ... and the first one, back, does not take the other one's. */
	p = start_pusher(&e, "svc", 0);
	prof_push__stats(p, &st);
	cr_expect_eq(st.resumed, 0);
	prof_push__close(p, 1000);

	/* A broken cursor is replaced with one for now. */
	{
		char path[256];
		FILE *f;

		snprintf(path, sizeof(path), "%s/push-cursor", e.dir);
		f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs("bpfprof push cursor 1\ngarbage\n", f);
		fclose(f);
		now = (int64_t)now_wall_ns();
		p = start_pusher(&e, "svc", 0);
		prof_push__stats(p, &st);
		cr_expect_eq(st.resumed, 0);
		prof_push__close(p, 1000);
		cr_expect_geq(cursor_end(&e, NULL), now);
	}
	cr_expect_eq(test_ingest_rx__count(e.rx, NULL), 5, "something was sent twice");

	test_ingest_rx__free(e.rx);
	prof_store__close(e.store);
	strbuf_release(&ident);
	strbuf_release(&want);
	strbuf_release(&status);
	test_rm_tree(e.dir);
}

/* Without a cursor directory (or a store), no cursor is read or written. */
Test(push, no_cursor_without_a_directory)
{
	char *dir = test_tmp_dir("push-nocursor");
	struct prof_store_opts so = {.dir = dir, .min_free_bytes = 1};
	struct prof_store *store = prof_store__open(&so);
	struct prof_push_opts o = {.url = "http://127.0.0.1:1", .hostname = "h", .store = store};
	struct prof_push *p;
	char path[256];

	cr_assert_not_null(store);
	p = prof_push__start(&o);
	cr_assert_not_null(p);
	prof_push__close(p, 0);
	o.store = NULL;
	o.cursor_dir = dir;
	p = prof_push__start(&o);
	cr_assert_not_null(p);
	prof_push__close(p, 0);
	snprintf(path, sizeof(path), "%s/push-cursor", dir);
	cr_expect_neq(access(path, F_OK), 0, "a cursor without a store or a directory");
	prof_store__close(store);
	test_rm_tree(dir);
}

Test(push, bad_options_are_refused)
{
	const char *bad_label[] = {"x-y=1"};
	struct prof_push_opts o[] = {
		{.url = "ftp://x"},
		{.url = NULL},
		{.url = "http://x", .service_name = "a b"},
		{.url = "http://x", .labels = bad_label, .nlabels = 1},
		{.url = "http://x", .tenant = "a b"},
		{.url = "http://x", .tenant = ""},
		{.url = "http://u:p@x", .auth = "u:p"}, /* credentials given twice */
		{.url = "http://u@x/", .auth = "token"},
		{.url = "http://x", .auth = ""},
		{.url = "http://x", .auth = "two\nlines"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(o); i++) {
		errno = 0;
		cr_expect_null(prof_push__start(&o[i]), "case %zu accepted", i);
		cr_expect_eq(errno, EINVAL, "case %zu", i);
	}
	prof_push__close(NULL, 0);
}
