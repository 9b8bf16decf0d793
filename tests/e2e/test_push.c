// SPDX-License-Identifier: MIT
/*
 * End-to-end: the agent with the real BPF programs pushes every interval to
 * a local stand-in for Pyroscope's ingest API (tests/common/ingest_rx.c, on
 * 127.0.0.1). Every request is checked (POST /ingest, the name with its
 * labels, from/until, format=pprof, the tenant and basic auth headers, a
 * gzip pprof body with the fixture's chain); then the receiver goes away
 * for a few intervals and comes back on the same port, and the ranges it
 * accepted must still be contiguous.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../profiler/push.h"
#include "../../profiler/store.h"
#include "../common/ingest_rx.h"
#include "../common/pprof_read.h"
#include "../common/testutil.h"

#define SEC 1000000000LL

static pid_t agent_pid, load_pid;
static int agent_port;
static char agent_log[64], auth_path[64];
static char *store_dir;
static struct test_ingest_rx *rx;

static void cleanup(void)
{
	test_kill(&load_pid);
	test_kill(&agent_pid);
	test_ingest_rx__free(rx);
	rx = NULL;
	if (store_dir)
		test_rm_tree(store_dir);
	store_dir = NULL;
	if (agent_log[0])
		unlink(agent_log);
	if (auth_path[0])
		unlink(auth_path);
}

/* An owner-only file with @data for --push-auth-file; its path is auth_path. */
static void write_auth_file(const char *data)
{
	FILE *f;

	snprintf(auth_path, sizeof(auth_path), "/tmp/bpfprof-push-auth-%d", (int)getpid());
	f = fopen(auth_path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fchmod(fileno(f), 0600), 0);
	fputs(data, f);
	cr_assert_eq(fclose(f), 0);
}

/*
 * Starts the agent pushing to @push_url, with 1 s intervals, the store in
 * store_dir (made on the first start, kept across restarts) and the
 * NULL-terminated @extra arguments; waits for /healthz.
 */
static void start_agent(const char *push_url, const char *const *extra)
{
	char bin[256], addr[64];
	const char *base[] = {"agent",	     "--http-address", addr,	  "-F",
			      "99",	     "--store",	       NULL,	  "--interval",
			      "1",	     "--push-url",     push_url,  "--service-name",
			      "bpfprof-e2e", "--label",	       "env=e2e", "--label",
			      "team=perf"};
	char *argv[40];
	size_t n = 0;
	struct test_http_response r;

	test_build_path("bpfprof", bin, sizeof(bin));
	agent_port = test_free_port();
	cr_assert_gt(agent_port, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", agent_port);
	snprintf(agent_log, sizeof(agent_log), "/tmp/bpfprof-push-agent-%d.log", (int)getpid());
	if (!store_dir)
		store_dir = test_tmp_dir("push-store");
	base[6] = store_dir;
	argv[n++] = bin;
	for (size_t i = 0; i < ARRAY_SIZE(base); i++)
		argv[n++] = (char *)base[i];
	for (; extra && *extra && n < ARRAY_SIZE(argv) - 1; extra++)
		argv[n++] = (char *)*extra;
	argv[n] = NULL;
	agent_pid = test_spawn(argv, NULL, agent_log);
	cr_assert_gt(agent_pid, 0);
	for (int i = 0; i < 100; i++) {
		if (test_http(agent_port, "GET", "/healthz", &r, 1000) == 0 && r.status == 200) {
			strbuf_release(&r.body);
			return;
		}
		strbuf_release(&r.body);
		usleep(100 * 1000);
	}
	cr_assert_fail("agent did not answer /healthz within 10 s");
}

/* The fixture with a known chain, busy for 40 s. */
static void start_load(void)
{
	char fix[256];
	char *argv[] = {fix, "40", "/dev/null", NULL};

	test_build_path("fixtures/fpchains", fix, sizeof(fix));
	load_pid = test_spawn(argv, NULL, NULL);
	cr_assert_gt(load_pid, 0);
}

/* The largest until= among accepted requests. */
static long long max_accepted_until(void)
{
	struct test_ingest_req rq;
	long long m = 0;

	for (size_t i = 0; test_ingest_rx__get(rx, i, &rq); i++) {
		if (rq.status / 100 == 2 && atoll(rq.until) > m)
			m = atoll(rq.until);
		strbuf_release(&rq.body);
	}
	return m;
}

/* The value of the series @series (a full "name{labels}") in /metrics text, or -1. */
static double metric_value(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, series, n) && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

struct range {
	long long from, until;
};

static int cmp_range(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

Test(push, ingest_requests_are_valid_and_an_outage_loses_nothing, .fini = cleanup, .timeout = 60)
{
	static const int first_answer[] = {503};
	char url[64], host[256] = "", want_name[512];
	struct test_http_response r;
	struct test_ingest_req rq;
	struct range *ranges;
	size_t n, acc, nranges = 0, with_chain = 0, refused = 0;
	long long t_down, t_up;
	uint64_t deadline;
	int st;

	test_require_bpf();
	rx = test_ingest_rx__new(0);
	test_ingest_rx__script(rx, first_answer, 1); /* a 5xx first: retried */
	cr_assert_eq(test_ingest_rx__listen(rx), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_ingest_rx__port(rx));
	start_load();
	write_auth_file("e2e-user:e2e-s3cret\n");
	start_agent(url, (const char *const[]){"--push-tenant", "e2e-tenant", "--push-auth-file",
					       auth_path, NULL});

	/* Up: a few intervals arrive. */
	deadline = now_mono_ns() + 15 * SEC;
	while ((test_ingest_rx__count(rx, &acc), acc) < 3 && now_mono_ns() < deadline)
		usleep(50000);
	cr_assert_geq(acc, 3, "only %zu intervals accepted in 15 s", acc);

	/* Down for 4 intervals, then back on the same port. */
	t_down = (long long)(now_wall_ns() / SEC);
	test_ingest_rx__close(rx);
	sleep(4);
	t_up = (long long)(now_wall_ns() / SEC);
	cr_assert_eq(test_ingest_rx__listen(rx), 0, "cannot listen on the same port again");

	/* The backlog arrives, and the intervals after it. */
	deadline = now_mono_ns() + 20 * SEC;
	while (max_accepted_until() < t_up + 2 && now_mono_ns() < deadline)
		usleep(100000);
	cr_assert_geq(max_accepted_until(), t_up + 2, "the backlog did not arrive within 20 s");

	/* The counters in /metrics and /healthz. */
	cr_assert_eq(test_http(agent_port, "GET", "/metrics", &r, 10000), 0);
	cr_assert_eq(r.status, 200);
	cr_expect_geq(metric_value(r.body.buf, "bpfprof_push_intervals_total{result=\"sent\"}"), 3);
	cr_expect_eq(metric_value(r.body.buf, "bpfprof_push_intervals_total{result=\"failed\"}"),
		     0);
	cr_expect_eq(metric_value(r.body.buf, "bpfprof_push_intervals_total{result=\"dropped\"}"),
		     0);
	cr_expect_geq(metric_value(r.body.buf, "bpfprof_push_retries_total"), 2,
		      "the 503 and the outage were not retried");
	cr_expect_geq(metric_value(r.body.buf, "bpfprof_push_queue_length"), 0);
	strbuf_release(&r.body);
	cr_assert_eq(test_http(agent_port, "GET", "/healthz", &r, 10000), 0);
	cr_expect(r.body.buf && strstr(r.body.buf, "\npush_sent "), "no push counters in /healthz");
	strbuf_release(&r.body);

	/* SIGTERM: the last interval is flushed and the agent exits 0. */
	kill(agent_pid, SIGTERM);
	cr_assert_eq(test_wait(agent_pid, &st, 15000), 0, "agent did not stop on SIGTERM");
	agent_pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);

	/* Every request, as Pyroscope would read it. */
	gethostname(host, sizeof(host) - 1);
	snprintf(want_name, sizeof(want_name), "bpfprof-e2e{hostname=%s,env=e2e,team=perf}", host);
	n = test_ingest_rx__count(rx, &acc);
	ranges = xcalloc(n + 1, sizeof(*ranges));
	for (size_t i = 0; i < n; i++) {
		Perftools__Profiles__Profile *pb;
		char err[256];
		bool chain = false;

		cr_assert(test_ingest_rx__get(rx, i, &rq));
		cr_expect_str_eq(rq.method, "POST");
		cr_expect_str_eq(rq.path, "/ingest");
		cr_expect_str_eq(rq.name, want_name);
		cr_expect_str_eq(rq.format, "pprof");
		cr_expect_str_eq(rq.spy, "bpfprof");
		cr_expect_str_eq(rq.rate, "99");
		cr_expect_str_eq(rq.org_id, "e2e-tenant", "request %zu", i);
		/* base64 of e2e-user:e2e-s3cret */
		cr_expect_str_eq(rq.authorization,
				 "Basic ZTJlLXVzZXI6ZTJlLXMzY3JldA==", "request %zu", i);
		cr_expect(rq.from[0] && rq.until[0] &&
				  strspn(rq.from, "0123456789") == strlen(rq.from) &&
				  strspn(rq.until, "0123456789") == strlen(rq.until),
			  "from=%s until=%s are not Unix seconds", rq.from, rq.until);
		cr_expect_lt(atoll(rq.from), atoll(rq.until));
		cr_assert_gt(rq.body.len, 2, "request %zu has no body", i);
		cr_expect(rq.body.buf[0] == '\x1f' && rq.body.buf[1] == '\x8b',
			  "request %zu: body is not gzip", i);
		pb = pprof_read(rq.body.buf, rq.body.len);
		cr_assert_not_null(pb, "request %zu: body is not a pprof", i);
		cr_expect_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "request %zu: %s", i, err);
		cr_expect_geq(pprof_value_index(pb, "samples", "count"), 0);
		cr_expect_geq(pprof_value_index(pb, "cpu", "nanoseconds"), 0);
		cr_expect_gt(pb->n_sample, 0, "request %zu: empty profile", i);
		/* The profile's own time lies inside [from, until]. */
		cr_expect_geq(pb->time_nanos / SEC, atoll(rq.from) - 1);
		cr_expect_leq(pb->time_nanos / SEC, atoll(rq.until));
		for (size_t k = 0; k < pb->n_sample && !chain; k++) {
			struct strbuf stk = STRBUF_INIT;

			pprof_sample_stack(pb, pb->sample[k], &stk);
			chain = stk.buf && strstr(stk.buf, "main;fp_a1;fp_a2;fp_a3;fp_leaf_a");
			strbuf_release(&stk);
		}
		pprof_free(pb);
		if (rq.status / 100 == 2) {
			ranges[nranges++] = (struct range){atoll(rq.from), atoll(rq.until)};
			with_chain += chain;
		} else {
			refused++;
		}
		strbuf_release(&rq.body);
	}
	cr_expect_eq(refused, 1, "the scripted 503 was not seen once");
	cr_expect_geq(with_chain * 2, nranges, "only %zu of %zu intervals hold the fixture's chain",
		      with_chain, nranges);

	/* No interval lost: the accepted ranges are back to back, across the outage. */
	qsort(ranges, nranges, sizeof(*ranges), cmp_range);
	{
		size_t m = 0;

		for (size_t i = 0; i < nranges; i++) /* a request retried after a lost reply */
			if (!m || ranges[i].from != ranges[m - 1].from)
				ranges[m++] = ranges[i];
			else
				cr_expect_eq(ranges[i].until, ranges[m - 1].until);
		nranges = m;
	}
	cr_assert_geq(nranges, 8, "only %zu intervals", nranges);
	for (size_t i = 1; i < nranges; i++)
		cr_expect_eq(ranges[i].from, ranges[i - 1].until,
			     "interval [%lld, %lld) follows [%lld, %lld): %s", ranges[i].from,
			     ranges[i].until, ranges[i - 1].from, ranges[i - 1].until,
			     ranges[i].from > ranges[i - 1].until ? "lost" : "overlap");
	cr_expect_lt(ranges[0].from, t_down);
	cr_expect_gt(ranges[nranges - 1].until, t_up + 1);
	free(ranges);
}

/* ---- resuming after a restart ------------------------------------------------------ */

/* A /metrics value of the running agent, or -1. */
static double agent_metric(const char *series)
{
	struct test_http_response r;
	double v = -1;

	if (test_http(agent_port, "GET", "/metrics", &r, 5000) == 0 && r.status == 200)
		v = metric_value(r.body.buf, series);
	strbuf_release(&r.body);
	return v;
}

/* Waits up to @ms for @series in /metrics to reach @min. */
static bool wait_metric(const char *series, double min, int ms)
{
	uint64_t deadline = now_mono_ns() + (uint64_t)ms * 1000000;

	while (agent_metric(series) < min && now_mono_ns() < deadline)
		usleep(100000);
	return agent_metric(series) >= min;
}

/*
 * Sleeps until half-way between two interval ends (wall-clock seconds, with
 * 1 s intervals), when the agent is neither writing the store nor pushing:
 * a kill then does not fall between the receiver's answer and the cursor's
 * rename (the one moment that can make an interval go out twice), nor does
 * the receiver going away lose a reply.
 */
static void sleep_to_mid_interval(void)
{
	uint64_t ns = now_wall_ns() % SEC;

	usleep((unsigned int)(((ns < SEC / 2 ? SEC / 2 : SEC + SEC / 2) - ns) / 1000));
}

static void kill_agent_mid_interval(void)
{
	sleep_to_mid_interval();
	test_kill(&agent_pid);
}

/* The from= and until= the pusher sends for a stored range. */
static struct range sent_range(const struct prof_store_range *r)
{
	struct strbuf url = STRBUF_INIT;
	struct range out = {0};

	prof_push_ingest_url("http://x", "s", r->start_ns, r->end_ns, 0, &url);
	cr_assert_eq(
		sscanf(strstr(url.buf, "from="), "from=%lld&until=%lld", &out.from, &out.until), 2);
	strbuf_release(&url);
	return out;
}

/*
 * The cursor: the agent stores intervals while the receiver refuses
 * connections and is killed with SIGKILL; restarted on the same store with
 * the receiver up, it sends them first, in order, then the new ones; the
 * receiver goes away again, the agent is killed again and restarted, and it
 * sends only what the second run had not. In the end every interval in the
 * store reached the receiver exactly once: no gap, no duplicate.
 */
Test(push, intervals_stored_before_a_sigkill_are_sent_after_the_restart, .fini = cleanup,
     .timeout = 60)
{
	struct prof_store_opts so = {0};
	struct prof_store_range *sr;
	struct prof_store *s;
	struct test_ingest_req rq;
	struct range *got;
	size_t nstored, n, acc, gaps = 0, gap_at[2] = {0}, sent_by_2;
	long long t_kill1, t_kill2;
	double resumed, resumed3;
	char url[64];
	int st;

	test_require_bpf();
	rx = test_ingest_rx__new(0); /* not listening: connections are refused */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", test_ingest_rx__port(rx));
	start_load();

	/* Run 1: nothing can be delivered; a few intervals are stored, then SIGKILL. */
	start_agent(url, NULL);
	cr_assert(wait_metric("bpfprof_store_intervals", 3, 15000),
		  "fewer than 3 intervals stored in 15 s");
	cr_assert_gt(agent_metric("bpfprof_push_retries_total"), 0, "no push was tried");
	kill_agent_mid_interval();
	t_kill1 = (long long)(now_wall_ns() / SEC);
	cr_assert_eq(test_ingest_rx__count(rx, NULL), 0);

	/*
	 * Run 2: the receiver is up; the backlog goes first, then new
	 * intervals. Then it goes down again for two more, and SIGKILL.
	 */
	cr_assert_eq(test_ingest_rx__listen(rx), 0);
	start_agent(url, NULL);
	resumed = agent_metric("bpfprof_push_resumed_intervals_total");
	cr_assert_geq(resumed, 3, "only %.0f intervals resumed", resumed);
	cr_assert(wait_metric("bpfprof_push_intervals_total{result=\"sent\"}", resumed + 2, 15000),
		  "the backlog and 2 new intervals did not arrive within 15 s");
	sleep_to_mid_interval();
	test_ingest_rx__close(rx);
	cr_assert(wait_metric("bpfprof_store_intervals",
			      agent_metric("bpfprof_store_intervals") + 2, 10000),
		  "no 2 more intervals stored in 10 s");
	kill_agent_mid_interval();
	t_kill2 = (long long)(now_wall_ns() / SEC);
	cr_assert_eq(test_ingest_rx__listen(rx), 0);

	/* Run 3: only what run 2 stored and had not sent, then new ones; SIGTERM flushes. */
	sent_by_2 = test_ingest_rx__count(rx, NULL);
	start_agent(url, NULL);
	resumed3 = agent_metric("bpfprof_push_resumed_intervals_total");
	cr_expect_geq(resumed3, 2, "only %.0f intervals resumed by run 3", resumed3);
	cr_assert(wait_metric("bpfprof_push_intervals_total{result=\"sent\"}", resumed3 + 2, 15000),
		  "run 3 delivered fewer than 2 new intervals in 15 s");
	kill(agent_pid, SIGTERM);
	cr_assert_eq(test_wait(agent_pid, &st, 15000), 0, "agent did not stop on SIGTERM");
	agent_pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
	cr_expect_gt(test_ingest_rx__count(rx, NULL), sent_by_2);

	/* Every stored interval was accepted once, in store order. */
	so.dir = store_dir;
	so.min_free_bytes = 1;
	s = prof_store__open(&so);
	cr_assert_not_null(s);
	cr_assert_eq(prof_store__ranges(s, 0, INT64_MAX, &sr, &nstored), 0);
	prof_store__close(s);
	n = test_ingest_rx__count(rx, &acc);
	cr_expect_eq(acc, n, "the receiver refused something");
	cr_expect_eq(n, nstored, "%zu requests for %zu stored intervals", n, nstored);
	got = xcalloc(n + 1, sizeof(*got));
	for (size_t i = 0; i < n; i++) {
		cr_assert(test_ingest_rx__get(rx, i, &rq));
		got[i] = (struct range){atoll(rq.from), atoll(rq.until)};
		strbuf_release(&rq.body);
	}
	for (size_t i = 0; i < n && i < nstored; i++) {
		struct range want = sent_range(&sr[i]);

		cr_expect(got[i].from == want.from && got[i].until == want.until,
			  "request %zu is [%lld, %lld), stored interval %zu [%lld, %lld)", i,
			  got[i].from, got[i].until, i, want.from, want.until);
		/*
		 * The stored intervals are back to back (the clock readings behind
		 * one's end and the next one's start differ by microseconds), but
		 * across the two restarts; never overlapping.
		 */
		if (i && llabs(sr[i].start_ns - sr[i - 1].end_ns) > 1000000) {
			cr_expect_gt(sr[i].start_ns, sr[i - 1].end_ns, "interval %zu overlaps", i);
			if (gaps < 2)
				gap_at[gaps] = i;
			gaps++;
		}
	}
	cr_assert_eq(gaps, 2, "%zu gaps in the stored intervals, not just the two restarts", gaps);
	/* Run 2 resumed exactly run 1's intervals, which cover the time up to its kill. */
	cr_expect_eq(gap_at[0], (size_t)resumed);
	cr_expect_geq(sr[gap_at[0] - 1].end_ns / SEC, t_kill1 - 2);
	cr_expect_lt(sr[gap_at[0] - 1].end_ns / SEC, t_kill1 + 1);
	/* Run 3 resumed what run 2 stored and had not sent before its kill. */
	cr_expect_eq(gap_at[1] - sent_by_2, (size_t)resumed3, "run 2 stored up to %zu, sent %zu",
		     gap_at[1], sent_by_2);
	cr_expect_geq(sr[gap_at[1] - 1].end_ns / SEC, t_kill2 - 2);
	free(got);
	free(sr);
}
