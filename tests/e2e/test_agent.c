// SPDX-License-Identifier: MIT
/*
 * End-to-end: the agent with the real BPF programs, scraped over HTTP the
 * way Parca and Grafana Alloy do (overlapping /debug/pprof/profile windows),
 * then stopped with SIGTERM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

#include "../../profiler/proc.h"
#include "../common/pprof_read.h"
#include "../common/promtext.h"
#include "../common/testutil.h"

static pid_t agent_pid, load_pid;
static char *extra_args[2]; /* more agent options for one test, NULL = none */
static int agent_port;
static char agent_log[64], agent_store[64];

/* Number of loaded BPF programs named prof_sample (ours). */
static int count_our_programs(void)
{
	char *argv[] = {"/usr/sbin/bpftool", "prog", "show", NULL};
	struct strbuf out = STRBUF_INIT;
	int n = 0;

	if (access(argv[0], X_OK))
		argv[0] = "/usr/bin/bpftool";
	if (test_run(argv, &out, NULL, 10000) == 0 && out.buf)
		for (const char *p = out.buf; (p = strstr(p, "name prof_sample")); p++)
			n++;
	strbuf_release(&out);
	return n;
}

static void start_agent(void)
{
	char bin[256], addr[64];
	struct test_http_response r;

	test_require_bpf();
	test_build_path("bpfprof", bin, sizeof(bin));
	agent_port = test_free_port();
	cr_assert_gt(agent_port, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", agent_port);
	snprintf(agent_log, sizeof(agent_log), "/tmp/bpfprof-agent-%d.log", (int)getpid());
	/* A store of its own (kept across a restart within one test), 2 s intervals. */
	if (!agent_store[0]) {
		snprintf(agent_store, sizeof(agent_store), "/tmp/bpfprof-agent-store-XXXXXX");
		cr_assert_not_null(mkdtemp(agent_store));
	}
	{
		char *argv[] = {bin,	      "agent", "--http-address", addr,
				"-F",	      "199",   "--store",	 agent_store,
				"--interval", "2",     extra_args[0],	 extra_args[1],
				NULL};

		agent_pid = test_spawn(argv, NULL, agent_log);
	}
	cr_assert_gt(agent_pid, 0);
	for (int i = 0; i < 100; i++) {
		if (test_http(agent_port, "GET", "/healthz", &r, 1000) == 0 && r.status == 200) {
			strbuf_release(&r.body);
			goto load;
		}
		strbuf_release(&r.body);
		usleep(100 * 1000);
	}
	cr_assert_fail("agent did not answer /healthz within 10 s");
load : {
	char fix[256];
	char *argv[] = {fix, "30", "/dev/null", NULL};

	test_build_path("fixtures/fpchains", fix, sizeof(fix));
	load_pid = test_spawn(argv, NULL, NULL);
}
}

static void stop_agent(void)
{
	test_kill(&load_pid);
	test_kill(&agent_pid);
	unlink(agent_log);
	if (agent_store[0]) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", agent_store);
		if (system(cmd))
			cr_log_warn("could not remove %s", agent_store);
		agent_store[0] = '\0';
	}
}

struct scrape {
	char path[128];
	struct test_http_response r;
	int err;
	uint64_t took_ns;
};

static void *scrape_thread(void *arg)
{
	struct scrape *s = arg;
	uint64_t t0 = now_mono_ns();

	s->err = test_http(agent_port, "GET", s->path, &s->r, 30000);
	s->took_ns = now_mono_ns() - t0;
	return NULL;
}

/* Three overlapping scrapes, like Parca + Alloy + a person, all succeed. */
Test(agent, concurrent_scrapes_are_valid_pprof, .init = start_agent, .fini = stop_agent,
     .timeout = 90)
{
	struct scrape s[3] = {};
	pthread_t th[3];

	for (int i = 0; i < 3; i++) {
		snprintf(s[i].path, sizeof(s[i].path), "/debug/pprof/profile?seconds=%d", 2 + i);
		cr_assert_eq(pthread_create(&th[i], NULL, scrape_thread, &s[i]), 0);
		usleep(300 * 1000); /* overlapping, not identical, windows */
	}
	for (int i = 0; i < 3; i++) {
		Perftools__Profiles__Profile *pb;
		char err[256];
		bool leaf = false;

		pthread_join(th[i], NULL);
		cr_assert_eq(s[i].err, 0, "scrape %d: %s", i, strerror(-s[i].err));
		cr_assert_eq(s[i].r.status, 200, "scrape %d: status %d", i, s[i].r.status);
		cr_assert(!strncmp(s[i].r.content_type, "application/octet-stream", 24),
			  "content type %s", s[i].r.content_type);
		/* Each window is as long as asked (within a second). */
		cr_expect_geq(s[i].took_ns, (uint64_t)(2 + i) * 1000000000ULL - 100000000ULL);
		cr_expect_leq(s[i].took_ns, (uint64_t)(3 + i) * 1000000000ULL + 500000000ULL);
		pb = pprof_read(s[i].r.body.buf, s[i].r.body.len);
		cr_assert_not_null(pb, "scrape %d is not a pprof", i);
		cr_assert_eq(pprof_check_ids(pb, err, sizeof(err)), 0, "scrape %d: %s", i, err);
		cr_expect_geq(pb->duration_nanos, (int64_t)(2 + i) * 1000000000LL - 100000000LL);
		for (size_t k = 0; k < pb->n_sample && !leaf; k++) {
			struct strbuf st = STRBUF_INIT;

			pprof_sample_stack(pb, pb->sample[k], &st);
			leaf = st.buf && strstr(st.buf, "main;fp_a1;fp_a2;fp_a3;fp_leaf_a");
			strbuf_release(&st);
		}
		cr_expect(leaf, "scrape %d lacks the fixture's chain", i);
		/* Every mapping is named by a path or a [pseudo] name, in printable text. */
		for (size_t k = 0; k < pb->n_mapping; k++) {
			const char *f = pprof_str(pb, pb->mapping[k]->filename);
			bool printable = f && *f;

			for (const char *c = f; printable && *c; c++)
				printable = *c >= 0x20 && *c < 0x7f;
			cr_expect(printable && (f[0] == '/' || f[0] == '['),
				  "scrape %d: mapping %zu has a bad file name", i, k + 1);
		}
		pprof_free(pb);
		if (i == 0) {
			/* go tool pprof reads a scrape of the running agent. */
			char path[] = "/tmp/bpfprof-scrape-XXXXXX";
			int fd = mkstemp(path);
			char *argv[] = {"/usr/bin/go", "tool", "pprof", "-top", path, NULL};
			struct strbuf out = STRBUF_INIT, errb = STRBUF_INIT;

			cr_assert_geq(fd, 0);
			cr_assert_eq(write(fd, s[i].r.body.buf, s[i].r.body.len),
				     (ssize_t)s[i].r.body.len);
			close(fd);
			setenv("HOME", "/tmp", 1);
			setenv("GOCACHE", "/tmp/bpfprof-gocache", 1);
			setenv("PPROF_TMPDIR", "/tmp", 1);
			cr_expect_eq(test_run(argv, &out, &errb, 60000), 0, "go tool pprof: %s",
				     errb.buf ? errb.buf : "");
			cr_expect_eq(errb.len, 0, "go tool pprof warned: %s", errb.buf);
			cr_expect(out.buf && strstr(out.buf, "fp_leaf_a"));
			strbuf_release(&out);
			strbuf_release(&errb);
			unlink(path);
		}
		strbuf_release(&s[i].r.body);
	}
}

Test(agent, other_routes_and_bad_requests, .init = start_agent, .fini = stop_agent, .timeout = 60)
{
	struct test_http_response r;
	static const char *const bad[] = {
		"/debug/pprof/profile?seconds=abc",
		"/debug/pprof/profile?seconds=-1",
		"/debug/pprof/profile?seconds=100000",
		"/flamegraph.svg?seconds=0",
		"/folded?seconds=1.5",
	};

	cr_assert_eq(test_http(agent_port, "GET", "/flamegraph.svg?seconds=1", &r, 20000), 0);
	cr_expect_eq(r.status, 200);
	cr_expect(!strncmp(r.content_type, "image/svg+xml", 13), "%s", r.content_type);
	cr_expect(r.body.buf && strstr(r.body.buf, "<svg") && strstr(r.body.buf, "fp_leaf_"),
		  "flame graph lacks the fixture");
	strbuf_release(&r.body);

	cr_assert_eq(test_http(agent_port, "GET", "/folded?seconds=1", &r, 20000), 0);
	cr_expect_eq(r.status, 200);
	cr_expect(r.body.buf && strstr(r.body.buf, "fpchains;"), "folded lacks the fixture");
	strbuf_release(&r.body);

	cr_assert_eq(test_http(agent_port, "GET", "/debug/pprof/", &r, 5000), 0);
	cr_expect_eq(r.status, 200);
	cr_expect(r.body.buf && strstr(r.body.buf, "/debug/pprof/profile"));
	strbuf_release(&r.body);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cr_assert_eq(test_http(agent_port, "GET", bad[i], &r, 5000), 0);
		cr_expect_eq(r.status, 400, "%s gave %d", bad[i], r.status);
		cr_expect(r.body.len > 0 && strchr(r.body.buf, '\n') == r.body.buf + r.body.len - 1,
			  "%s: reason is not one line: %s", bad[i], r.body.buf);
		strbuf_release(&r.body);
	}
	cr_assert_eq(test_http(agent_port, "GET", "/no/such/path", &r, 5000), 0);
	cr_expect_eq(r.status, 404);
	strbuf_release(&r.body);

	/* Garbage does not take the agent down. */
	{
		struct strbuf raw = STRBUF_INIT;

		test_http_raw(agent_port, "\x01\x02 GARBAGE\r\n\r\n", 14, &raw, 3000);
		strbuf_release(&raw);
	}
	cr_assert_eq(test_http(agent_port, "GET", "/healthz", &r, 5000), 0);
	cr_expect_eq(r.status, 200);
	cr_expect(r.body.buf && !strncmp(r.body.buf, "ok", 2));
	strbuf_release(&r.body);
}

/*
 * SIGTERM: exit 0, promptly, with every BPF program detached; a scrape in
 * flight gets the profile of the window so far, not a reset connection.
 */
Test(agent, sigterm_detaches_and_exits_zero, .timeout = 60)
{
	struct scrape inflight = {.path = "/debug/pprof/profile?seconds=60"};
	Perftools__Profiles__Profile *pb;
	pthread_t th;
	int before, st;
	uint64_t t0;

	test_require_bpf();
	before = count_our_programs();
	start_agent();
	cr_assert_gt(count_our_programs(), before, "agent loaded no prof_sample program");
	cr_assert_eq(pthread_create(&th, NULL, scrape_thread, &inflight), 0);
	sleep(2);
	t0 = now_mono_ns();
	kill(agent_pid, SIGTERM);
	cr_assert_eq(test_wait(agent_pid, &st, 10000), 0, "agent did not stop on SIGTERM");
	agent_pid = 0;
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "agent exit status %d", st);
	cr_expect_lt(now_mono_ns() - t0, 5000000000ULL, "agent took over 5 s to stop");
	cr_expect_eq(count_our_programs(), before, "BPF programs left attached after exit");
	pthread_join(th, NULL);
	cr_expect_eq(inflight.err, 0, "in-flight scrape: %s", strerror(-inflight.err));
	cr_expect_eq(inflight.r.status, 200, "in-flight scrape got status %d", inflight.r.status);
	pb = pprof_read(inflight.r.body.buf, inflight.r.body.len);
	cr_expect_not_null(pb, "in-flight scrape is not a pprof");
	if (pb)
		cr_expect_geq(pb->duration_nanos, 1000000000LL, "in-flight window lost its data");
	pprof_free(pb);
	strbuf_release(&inflight.r.body);
	stop_agent();
}

/*
 * Windows opened back to back (within a millisecond, while the first one's
 * cut is being drained) each get their own samples: a cut request that
 * arrives during a drain must not be lost.
 */
Test(agent, back_to_back_windows_all_get_samples, .init = start_agent, .fini = stop_agent,
     .timeout = 90)
{
	for (int round = 0; round < 5; round++) {
		struct scrape s[2] = {};
		pthread_t th[2];

		snprintf(s[0].path, sizeof(s[0].path), "/folded?seconds=2");
		snprintf(s[1].path, sizeof(s[1].path), "/folded?seconds=1");
		cr_assert_eq(pthread_create(&th[0], NULL, scrape_thread, &s[0]), 0);
		usleep(round * 300); /* 0 to 1.2 ms apart */
		cr_assert_eq(pthread_create(&th[1], NULL, scrape_thread, &s[1]), 0);
		for (int i = 0; i < 2; i++) {
			pthread_join(th[i], NULL);
			cr_assert_eq(s[i].err, 0);
			cr_assert_eq(s[i].r.status, 200);
			cr_expect(s[i].r.body.buf && strstr(s[i].r.body.buf, "fpchains;"),
				  "round %d: window %s got no samples of the load", round,
				  s[i].path);
			strbuf_release(&s[i].r.body);
		}
	}
}

/* ---- /metrics against the Prometheus text format (0.0.4), strictly ---------- */

Test(agent, metrics_are_valid_prometheus_text, .init = start_agent, .fini = stop_agent,
     .timeout = 60)
{
	static const char *const families[] = {
		"bpfprof_process_cpu_seconds_total",
		"bpfprof_process_resident_memory_bytes",
		"bpfprof_samples_total",
		"bpfprof_samples_dropped_total",
		"bpfprof_stack_failures_total",
		"bpfprof_map_entries",
		"bpfprof_symbol_lookups_total",
		"bpfprof_store_bytes",
		"bpfprof_store_oldest_timestamp_seconds",
		"bpfprof_http_requests_total",
	};
	struct test_http_response r;
	struct prom_result pr;

	/* Requests first, so that the HTTP counters have something to count. */
	cr_assert_eq(test_http(agent_port, "GET", "/folded?seconds=1", &r, 20000), 0);
	strbuf_release(&r.body);
	cr_assert_eq(test_http(agent_port, "GET", "/api/top", &r, 20000), 0);
	strbuf_release(&r.body);
	cr_assert_eq(test_http(agent_port, "GET", "/metrics", &r, 10000), 0);
	cr_assert_eq(r.status, 200);
	cr_expect(!strncmp(r.content_type, "text/plain; version=0.0.4", 25), "%s", r.content_type);
	cr_assert_eq(prom_check(r.body.buf, &pr), 0, "%s", pr.error);
	cr_expect_gt(pr.samples, 20, "only %zu samples", pr.samples);
	for (size_t i = 0; i < ARRAY_SIZE(families); i++)
		cr_expect_not_null(prom_find(&pr, families[i]), "%s is missing", families[i]);
	cr_expect(strstr(r.body.buf,
			 "\nbpfprof_http_requests_total{route=\"/folded\",code=\"200\"} "),
		  "HTTP requests by route and status are missing");
	cr_expect(strstr(r.body.buf,
			 "\nbpfprof_http_requests_total{route=\"/api/top\",code=\"200\"} 1\n"),
		  "the /api/top request is not counted");
	prom_result__free(&pr);
	strbuf_release(&r.body);
}

/* ---- /api/..., container ids, compression ------------------------------------ */

static json_t *get_json(const char *path)
{
	struct test_http_response r;
	json_error_t e;
	json_t *j;

	cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
	cr_assert_eq(r.status, 200, "%s: %d %s", path, r.status, r.body.buf);
	cr_assert_str_eq(r.content_type, "application/json");
	j = json_loadb(r.body.buf, r.body.len, 0, &e);
	cr_assert_not_null(j, "%s: %s", path, e.text);
	strbuf_release(&r.body);
	return j;
}

/*
 * The fixture's container id as the agent should see it: none on a host,
 * the container's when the tests themselves run in one.
 */
static bool fixture_container(char id[65])
{
	char path[64];
	struct strbuf sb = STRBUF_INIT;
	bool in = false;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)load_pid);
	if (read_file(path, &sb, 65536) == 0)
		in = prof_cgroup_container_id(sb.buf, id) == 0;
	strbuf_release(&sb);
	return in;
}

Test(agent, api_containers_and_compression, .init = start_agent, .fini = stop_agent, .timeout = 90)
{
	uint64_t t0 = now_wall_ns() / 1000000000ULL;
	char path[256], cid[65] = "";
	bool in_container = fixture_container(cid);
	json_t *j, *arr, *o;
	size_t i, busy = 0;
	bool found = false;

	sleep(7); /* three 2 s intervals of the fixture, stored */

	/* CPU over time: one point per interval, in order, with the fixture's core. */
	snprintf(path, sizeof(path), "/api/timeseries?start=%llu", (unsigned long long)t0);
	j = get_json(path);
	arr = json_object_get(j, "points");
	cr_assert_geq(json_array_size(arr), 2, "points: %zu", json_array_size(arr));
	json_array_foreach(arr, i, o)
	{
		double cores = json_number_value(json_object_get(o, "cores"));

		/* 2 s intervals; the agent's first one starts when it does. */
		cr_expect(fabs(json_number_value(json_object_get(o, "duration")) - 2.0) < 0.5 ||
				  (i == 0 && json_number_value(json_object_get(o, "duration")) > 0),
			  "duration %g", json_number_value(json_object_get(o, "duration")));
		if (i)
			cr_expect_gt(json_number_value(json_object_get(o, "time")),
				     json_number_value(
					     json_object_get(json_array_get(arr, i - 1), "time")));
		busy += cores > 0.5;
	}
	cr_expect_geq(busy, 1, "no interval shows the fixture's busy core");
	json_decref(j);
	/* ... and for the fixture alone, through comm=. */
	snprintf(path, sizeof(path), "/api/timeseries?start=%llu&comm=fpchains",
		 (unsigned long long)t0);
	j = get_json(path);
	arr = json_object_get(j, "points");
	busy = 0;
	json_array_foreach(arr, i, o) busy += json_integer_value(json_object_get(o, "samples")) > 0;
	cr_expect_geq(busy, 2, "fixture samples in only %zu intervals", busy);
	json_decref(j);

	/* Top functions: the fixture's leaves have self time, and total >= self. */
	snprintf(path, sizeof(path), "/api/top?start=%llu&comm=fpchains&limit=0",
		 (unsigned long long)t0);
	j = get_json(path);
	arr = json_object_get(j, "functions");
	json_array_foreach(arr, i, o)
	{
		const char *name = json_string_value(json_object_get(o, "name"));

		cr_expect_geq(json_integer_value(json_object_get(o, "total")),
			      json_integer_value(json_object_get(o, "self")), "%s", name);
		if (!strcmp(name, "fp_leaf_a")) {
			cr_expect_gt(json_integer_value(json_object_get(o, "self")), 0);
			found = true;
		}
	}
	cr_expect(found, "fp_leaf_a is not in the fixture's top functions");
	json_decref(j);

	/* Processes: the fixture by pid, with the container id it really has. */
	snprintf(path, sizeof(path), "/api/processes?start=%llu&pid=%d", (unsigned long long)t0,
		 (int)load_pid);
	j = get_json(path);
	arr = json_object_get(j, "processes");
	cr_assert_geq(json_array_size(arr), 1);
	o = json_array_get(arr, 0);
	cr_expect_str_eq(json_string_value(json_object_get(o, "comm")), "fpchains");
	if (in_container)
		cr_expect_str_eq(json_string_value(json_object_get(o, "container_id")) ?: "", cid);
	else
		cr_expect_null(json_object_get(o, "container_id"), "a host process has an id");
	json_decref(j);

	/* The stored pprof: host processes carry no container_id label. */
	{
		struct test_http_response r;
		Perftools__Profiles__Profile *pb;
		size_t labelled = 0, fixture = 0;

		snprintf(path, sizeof(path), "/debug/pprof/profile?start=%llu&pid=%d",
			 (unsigned long long)t0, (int)load_pid);
		cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
		cr_assert_eq(r.status, 200);
		pb = pprof_read(r.body.buf, r.body.len);
		cr_assert_not_null(pb);
		for (i = 0; i < pb->n_sample; i++) {
			const char *l = pprof_label_str(pb, pb->sample[i], "container_id");

			fixture++;
			if (l) {
				labelled++;
				cr_expect_str_eq(l, in_container ? cid : "(none)");
			}
		}
		cr_expect_gt(fixture, 0);
		cr_expect_eq(labelled, in_container ? fixture : 0);
		pprof_free(pb);
		strbuf_release(&r.body);
	}

	/* container= with an id nobody has: empty everywhere. */
	{
		static const char *const routes[] = {"/folded", "/flamegraph.svg",
						     "/debug/pprof/profile"};
		const char *none =
			"0000000000000000000000000000000000000000000000000000000000000000";

		for (i = 0; i < ARRAY_SIZE(routes); i++) {
			struct test_http_response r;
			Perftools__Profiles__Profile *pb;

			snprintf(path, sizeof(path), "%s?start=%llu&container=%s", routes[i],
				 (unsigned long long)t0, none);
			cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
			cr_expect_eq(r.status, 200, "%s", path);
			if (i == 0)
				cr_expect_eq(r.body.len, 0, "%s: %s", path, r.body.buf);
			if (i == 1)
				cr_expect(!strstr(r.body.buf, "fp_leaf_a"), "%s", path);
			if (i == 2) {
				pb = pprof_read(r.body.buf, r.body.len);
				cr_expect(pb && pb->n_sample == 0, "%s", path);
				pprof_free(pb);
			}
			strbuf_release(&r.body);
		}
		snprintf(path, sizeof(path), "/api/processes?start=%llu&container=%.12s",
			 (unsigned long long)t0, none);
		j = get_json(path);
		cr_expect_eq(json_array_size(json_object_get(j, "processes")), 0);
		json_decref(j);
	}

	/* Compression as asked; pprof as it is. */
	{
		static const char *const enc[] = {"zstd", "gzip", "br;q=1, gzip;q=0.5"};
		static const char *const want[] = {"zstd", "gzip", "gzip"};
		struct test_http_response r;

		for (i = 0; i < ARRAY_SIZE(enc); i++) {
			char hdr[64];

			snprintf(hdr, sizeof(hdr), "Accept-Encoding: %s\r\n", enc[i]);
			cr_assert_eq(test_http_with(agent_port, "GET", "/api/top", hdr, &r, 10000),
				     0);
			cr_expect_eq(r.status, 200);
			cr_expect_str_eq(r.content_encoding, want[i]);
			strbuf_release(&r.body);
		}
		snprintf(path, sizeof(path), "/debug/pprof/profile?start=%llu",
			 (unsigned long long)t0);
		cr_assert_eq(test_http_with(agent_port, "GET", path, "Accept-Encoding: zstd\r\n",
					    &r, 10000),
			     0);
		cr_expect_str_eq(r.content_encoding, "");
		cr_expect(r.body.len > 2 && (unsigned char)r.body.buf[0] == 0x1f);
		strbuf_release(&r.body);
	}
}

/* --http-token-file: every route but /healthz wants the token; a loose file is refused. */
Test(agent, http_token_file, .fini = stop_agent, .timeout = 60)
{
	char *dir, tok[256], bin[256];
	struct test_http_response r;
	FILE *f;

	test_require_bpf();
	dir = test_tmp_dir("token");
	snprintf(tok, sizeof(tok), "%s/token", dir);
	f = fopen(tok, "w");
	cr_assert_not_null(f);
	fputs("e2e-s3cret\n", f);
	fclose(f);

	/* Readable by others: refused before anything is loaded. */
	chmod(tok, 0644);
	test_build_path("bpfprof", bin, sizeof(bin));
	{
		char *argv[] = {bin, "agent", "--no-store", "--http-token-file", tok, NULL};
		struct strbuf err = STRBUF_INIT;

		cr_expect_eq(test_run(argv, NULL, &err, 10000), 1);
		cr_expect(err.buf && strstr(err.buf, "--http-token-file") &&
				  strstr(err.buf, "group or others"),
			  "unclear error: %s", err.buf);
		strbuf_release(&err);
	}
	chmod(tok, 0600);
	extra_args[0] = "--http-token-file";
	extra_args[1] = tok;
	start_agent();
	extra_args[0] = extra_args[1] = NULL;

	cr_assert_eq(test_http(agent_port, "GET", "/metrics", &r, 5000), 0);
	cr_expect_eq(r.status, 401);
	strbuf_release(&r.body);
	cr_assert_eq(test_http_with(agent_port, "GET", "/metrics",
				    "Authorization: Bearer e2e-s3cret\r\n", &r, 5000),
		     0);
	cr_expect_eq(r.status, 200);
	strbuf_release(&r.body);
	cr_assert_eq(test_http_with(agent_port, "GET", "/folded?seconds=1",
				    "Authorization: Bearer e2e-s3cret2\r\n", &r, 5000),
		     0);
	cr_expect_eq(r.status, 401);
	strbuf_release(&r.body);
	test_rm_tree(dir);
}

/* The number of samples of comm "fpchains" in folded text. */
static unsigned long long fixture_samples(const char *folded)
{
	unsigned long long n = 0;

	for (const char *p = folded; p && (p = strstr(p, "fpchains;")); p++) {
		const char *eol = strchr(p, '\n'), *sp;

		if (p != folded && p[-1] != '\n')
			continue;
		if (!eol)
			break;
		for (sp = eol; sp > p && sp[-1] != ' '; sp--)
			;
		n += strtoull(sp, NULL, 10);
	}
	return n;
}

/*
 * The local history: intervals are stored as they end; a past range is
 * served at once (start=/end=, filters); kill -9 loses at most the interval
 * being written, and a restarted agent serves the earlier range again.
 */
Test(agent, history_survives_kill9, .init = start_agent, .fini = stop_agent, .timeout = 90)
{
	struct test_http_response r;
	char path[160];
	unsigned long long before, after;
	uint64_t t0 = now_wall_ns() / 1000000000ULL, t1, q0;

	sleep(7); /* three 2 s intervals of the fixture, stored */
	t1 = now_wall_ns() / 1000000000ULL;
	snprintf(path, sizeof(path), "/folded?start=%llu&end=%llu", (unsigned long long)t0,
		 (unsigned long long)t1);
	q0 = now_mono_ns();
	cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
	cr_expect_lt(now_mono_ns() - q0, 1000000000ULL, "a history query took over 1 s");
	cr_assert_eq(r.status, 200, "%s: %d %s", path, r.status, r.body.buf);
	before = fixture_samples(r.body.buf);
	if (before <= 50) {
		struct strbuf log = STRBUF_INIT;
		struct test_http_response m;

		read_file(agent_log, &log, 1 << 16);
		if (test_http(agent_port, "GET", "/metrics", &m, 5000) == 0) {
			for (char *l = strtok(m.body.buf, "\n"); l; l = strtok(NULL, "\n"))
				if (strstr(l, "store") || strstr(l, "drains") ||
				    strstr(l, "samples_total"))
					cr_log_warn("metric: %s", l);
			strbuf_release(&m.body);
		}
		cr_log_warn("agent log: %s", log.buf ? log.buf : "");
		strbuf_release(&log);
		{
			char cmd[160];

			snprintf(cmd, sizeof(cmd),
				 "gdb -p %d -batch -ex 'thread apply all bt 16' > "
				 "/tmp/agent-stack.txt 2>&1",
				 agent_pid);
			if (system(cmd))
				cr_log_warn("gdb failed");
		}
	}
	cr_expect_gt(before, 50, "only %llu fixture samples in the stored range", before);
	cr_expect(strstr(r.body.buf, "main;fp_a1;fp_a2;fp_a3;fp_leaf_a"),
		  "chain missing in %s (range %llu..%llu): %.600s", path, (unsigned long long)t0,
		  (unsigned long long)t1, r.body.buf);
	strbuf_release(&r.body);

	/* Filters and bad ranges. */
	snprintf(path, sizeof(path), "/folded?start=%llu&end=%llu&comm=nosuchcomm",
		 (unsigned long long)t0, (unsigned long long)t1);
	cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
	cr_expect_eq(r.status, 200);
	cr_expect_eq(r.body.len, 0, "comm= did not filter: %s", r.body.buf);
	strbuf_release(&r.body);
	cr_assert_eq(test_http(agent_port, "GET", "/folded?start=yesterday", &r, 5000), 0);
	cr_expect_eq(r.status, 400);
	strbuf_release(&r.body);
	snprintf(path, sizeof(path), "/folded?start=%llu&end=%llu", (unsigned long long)t1,
		 (unsigned long long)t0);
	cr_assert_eq(test_http(agent_port, "GET", path, &r, 5000), 0);
	cr_expect_eq(r.status, 400, "start after end accepted");
	strbuf_release(&r.body);

	/* kill -9, restart on the same store: the range is still there. */
	test_kill(&agent_pid);
	test_kill(&load_pid);
	start_agent();
	snprintf(path, sizeof(path), "/folded?start=%llu&end=%llu", (unsigned long long)t0,
		 (unsigned long long)t1);
	cr_assert_eq(test_http(agent_port, "GET", path, &r, 10000), 0);
	cr_assert_eq(r.status, 200);
	after = fixture_samples(r.body.buf);
	cr_expect_eq(after, before, "after kill -9 the range has %llu samples, before %llu", after,
		     before);
	strbuf_release(&r.body);
}
