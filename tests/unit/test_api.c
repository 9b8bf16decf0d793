// SPDX-License-Identifier: MIT
/*
 * Tests for profiler/api.c (the JSON of /api/...) and the store's
 * per-interval totals behind /api/timeseries. The JSON is parsed back with
 * jansson and compared with counts known by construction.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "common/util.h"
#include "profiler/api.h"
#include "profiler/store.h"
#include "tests/common/testutil.h"

#define SEC 1000000000LL
#define PERIOD 10000000LL /* 100 Hz */
#define CID "3f1c2a7b9d8e4f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"

static const struct prof_line_in l_main = {.name = "main", .file = "/src/app.c", .line = 3};
static const struct prof_line_in l_work = {.name = "work", .file = "/src/app.c", .line = 9};
static const struct prof_line_in l_leaf = {.name = "leaf", .file = "/src/app.c", .line = 20};
static const struct prof_line_in l_rec = {.name = "rec"};
/* An inline chain at one address: helper inlined into work (innermost first). */
static const struct prof_line_in l_inl[] = {{.name = "helper"},
					    {.name = "work", .file = "/src/app.c", .line = 10}};

/*
 * pid 10 "app" in container CID:
 *   main;work;leaf          7
 *   main;leaf               3
 *   main;rec;rec;rec        2   (recursion: total counted once per sample)
 *   main;work+helper(inl)   4   (the inlined helper is the leaf)
 * pid 20 "db" on the host:
 *   main;leaf               4
 * pid 10 again, another thread: main;leaf 1 (same process row)
 */
static struct prof_profile *api_profile(void)
{
	const struct prof_loc_in m = {0x1000, NULL, &l_main, 1};
	const struct prof_loc_in w = {0x1100, NULL, &l_work, 1};
	const struct prof_loc_in f = {0x1200, NULL, &l_leaf, 1};
	const struct prof_loc_in r = {0x1300, NULL, &l_rec, 1};
	const struct prof_loc_in inl = {0x1400, NULL, l_inl, 2};
	const struct prof_loc_in s1[] = {f, w, m}, s2[] = {f, m}, s3[] = {r, r, r, m},
				 s4[] = {inl, m};
	struct prof_profile *p = prof_profile__new(PERIOD);
	struct prof_sample_in in[] = {
		{10, 10, "app", "app", s1, 3, 7, CID}, {10, 10, "app", "app", s2, 2, 3, CID},
		{10, 10, "app", "app", s3, 4, 2, CID}, {10, 10, "app", "app", s4, 2, 4, CID},
		{20, 20, "db", "db", s2, 2, 4, NULL},  {10, 11, "app", "io", s2, 2, 1, CID},
	};

	p->time_nanos = 100 * SEC;
	p->duration_nanos = 10 * SEC;
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		prof_profile__add_sample(p, &in[i]);
	return p;
}

static json_t *parse(const struct strbuf *sb)
{
	json_error_t e;
	json_t *j;

	cr_assert(sb->len > 0 && sb->buf[sb->len - 1] == '\n', "no final newline");
	j = json_loadb(sb->buf, sb->len, JSON_REJECT_DUPLICATES, &e);
	cr_assert_not_null(j, "invalid JSON (%s at %d): %s", e.text, e.position, sb->buf);
	return j;
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
	size_t i;
	json_t *o;

	json_array_foreach(arr, i, o) if (!strcmp(json_string_value(json_object_get(o, key)) ?: "",
						  value)) return o;
	return NULL;
}

static long long num(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

static double real(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_number(v), "%s is not a number", key);
	return json_number_value(v);
}

Test(api, top_self_and_total)
{
	static const struct {
		const char *name;
		long long self, total;
	} want[] = {
		/* 21 samples in all. */
		{"leaf", 7 + 3 + 4 + 1, 7 + 3 + 4 + 1},
		{"helper", 4, 4},
		{"rec", 2, 2},
		{"main", 0, 21},
		{"work", 0, 7 + 4},
	};
	struct prof_profile *p = api_profile();
	struct strbuf sb = STRBUF_INIT;
	json_t *j, *fns;

	cr_assert_eq(api_top_json(p, 0, API_SORT_SELF, &sb), 0);
	j = parse(&sb);
	cr_assert_eq(num(j, "total_samples"), 21);
	cr_assert_eq(real(j, "start"), 100.0);
	cr_assert_eq(real(j, "end"), 110.0);
	fns = json_object_get(j, "functions");
	cr_assert_eq(json_array_size(fns), ARRAY_SIZE(want));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		json_t *o = json_array_get(fns, i);

		/* In order: by self, then total. */
		cr_assert_str_eq(json_string_value(json_object_get(o, "name")), want[i].name);
		cr_expect_eq(num(o, "self"), want[i].self, "%s self", want[i].name);
		cr_expect_eq(num(o, "total"), want[i].total, "%s total", want[i].name);
		cr_expect(fabs(real(o, "self_fraction") - want[i].self / 21.0) < 1e-9);
		cr_expect(fabs(real(o, "total_fraction") - want[i].total / 21.0) < 1e-9);
	}
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(fns, 0), "file")),
			 "/src/app.c");
	cr_assert_null(json_object_get(json_array_get(fns, 2), "file"), "rec has no file");
	json_decref(j);

	/* By total, and a limit. */
	strbuf_reset(&sb);
	cr_assert_eq(api_top_json(p, 2, API_SORT_TOTAL, &sb), 0);
	j = parse(&sb);
	fns = json_object_get(j, "functions");
	cr_assert_eq(json_array_size(fns), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(fns, 0), "name")),
			 "main");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(fns, 1), "name")),
			 "leaf");
	json_decref(j);
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(api, processes_rows_and_shares)
{
	struct prof_profile *p = api_profile();
	struct strbuf sb = STRBUF_INIT;
	json_t *j, *procs, *app, *db;

	cr_assert_eq(api_processes_json(p, 0, &sb), 0);
	j = parse(&sb);
	procs = json_object_get(j, "processes");
	cr_assert_eq(json_array_size(procs), 2, "%s", sb.buf);
	app = find_by(procs, "comm", "app");
	db = find_by(procs, "comm", "db");
	cr_assert(app && db);
	cr_assert_eq(json_array_get(procs, 0), app, "most samples first");
	cr_assert_eq(num(app, "pid"), 10);
	cr_assert_eq(num(app, "samples"), 17, "both threads of pid 10 in one row");
	cr_assert(fabs(real(app, "share") - 17 / 21.0) < 1e-9);
	cr_assert(fabs(real(app, "cpu_seconds") - 17 * 0.01) < 1e-9);
	cr_assert_str_eq(json_string_value(json_object_get(app, "container_id")), CID);
	cr_assert_eq(num(db, "samples"), 4);
	cr_assert_null(json_object_get(db, "container_id"), "host process with a container id");
	json_decref(j);

	strbuf_reset(&sb);
	cr_assert_eq(api_processes_json(p, 1, &sb), 0);
	j = parse(&sb);
	cr_assert_eq(json_array_size(json_object_get(j, "processes")), 1);
	json_decref(j);
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(api, empty_profile_is_valid_json)
{
	struct prof_profile *p = prof_profile__new(PERIOD);
	struct strbuf sb = STRBUF_INIT;
	json_t *j;

	cr_assert_eq(api_top_json(p, 0, API_SORT_SELF, &sb), 0);
	j = parse(&sb);
	cr_assert_eq(num(j, "total_samples"), 0);
	cr_assert_eq(json_array_size(json_object_get(j, "functions")), 0);
	json_decref(j);
	strbuf_reset(&sb);
	cr_assert_eq(api_processes_json(p, 0, &sb), 0);
	json_decref(parse(&sb));
	strbuf_release(&sb);
	prof_profile__free(p);
}

/* Names are bytes from ELF files and /proc: quotes, controls and bad UTF-8 stay valid JSON. */
Test(api, odd_names_are_escaped)
{
	static const struct prof_line_in l = {.name = "a\"b\\c\n\x01</script>\xff\xfe"};
	const struct prof_loc_in loc = {0x1000, NULL, &l, 1};
	struct prof_sample_in in = {1, 1, "x\"y\x80", "t", &loc, 1, 1, NULL};
	struct prof_profile *p = prof_profile__new(PERIOD);
	struct strbuf sb = STRBUF_INIT;
	json_t *j;

	prof_profile__add_sample(p, &in);
	cr_assert_eq(api_top_json(p, 0, API_SORT_SELF, &sb), 0);
	j = parse(&sb);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(j, "functions"), 0), "name")),
			 "a\"b\\c\n\x01</script>??");
	json_decref(j);
	strbuf_reset(&sb);
	cr_assert_eq(api_processes_json(p, 0, &sb), 0);
	j = parse(&sb);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(j, "processes"), 0), "comm")),
			 "x\"y?");
	json_decref(j);
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(api, timeseries_points)
{
	struct api_series s = {0};
	struct strbuf sb = STRBUF_INIT;
	json_t *j, *pts, *p0;

	api_series__add(&s, 100 * SEC, 10 * SEC, 1500, PERIOD);
	api_series__add(&s, 110 * SEC, 10 * SEC, 0, PERIOD);
	cr_assert_eq(api_timeseries_json(&s, 95 * SEC, 125 * SEC, &sb), 0);
	j = parse(&sb);
	cr_assert_eq(real(j, "start"), 95.0);
	cr_assert_eq(real(j, "end"), 125.0);
	cr_assert(fabs(real(j, "period_seconds") - 0.01) < 1e-12);
	pts = json_object_get(j, "points");
	cr_assert_eq(json_array_size(pts), 2);
	p0 = json_array_get(pts, 0);
	cr_assert_eq(real(p0, "time"), 100.0);
	cr_assert_eq(real(p0, "duration"), 10.0);
	cr_assert_eq(num(p0, "samples"), 1500);
	cr_assert(fabs(real(p0, "cpu_seconds") - 15.0) < 1e-9);
	cr_assert(fabs(real(p0, "cores") - 1.5) < 1e-9);
	cr_assert_eq(num(json_array_get(pts, 1), "samples"), 0);
	json_decref(j);
	strbuf_release(&sb);
	api_series__release(&s);
}

/* ---- the store's per-interval totals ---------------------------------------- */

static struct prof_profile *interval(int64_t t, uint64_t app, uint64_t db)
{
	const struct prof_loc_in m = {0x1000, NULL, &l_main, 1};
	struct prof_sample_in a = {10, 10, "app", "app", &m, 1, app, CID};
	struct prof_sample_in d = {20, 20, "db", "db", &m, 1, db, NULL};
	struct prof_profile *p = prof_profile__new(PERIOD);

	p->time_nanos = t;
	p->duration_nanos = 10 * SEC;
	if (app)
		prof_profile__add_sample(p, &a);
	if (db)
		prof_profile__add_sample(p, &d);
	return p;
}

Test(api, store_interval_totals)
{
	static const struct {
		struct prof_store_filter f;
		uint64_t want[5];
	} cases[] = {
		{{0}, {11, 22, 33, 44, 55}},
		{{.pid = 10}, {1, 2, 3, 4, 5}},
		{{.comm = "db"}, {10, 20, 30, 40, 50}},
		{{.container = "3f1c2a7b9d8e"}, {1, 2, 3, 4, 5}},
		{{.container = "0123456789ab"}, {0, 0, 0, 0, 0}},
	};
	char *dir = test_tmp_dir("api-store");
	struct prof_store_opts o = {.dir = dir, .min_free_bytes = 1};
	struct prof_store *s = prof_store__open(&o);
	int64_t t0 = (int64_t)now_wall_ns() / SEC * SEC - 3600 * SEC;

	cr_assert_not_null(s);
	for (int i = 0; i < 5; i++) {
		struct prof_profile *p = interval(t0 + i * 10 * SEC, i + 1, 10 * (i + 1));

		cr_assert_eq(prof_store__append(s, p), 0);
		prof_profile__free(p);
	}
	for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
		struct api_series ser = {0};
		struct prof_profile *q = NULL;
		uint64_t sum = 0;

		cr_assert_eq(prof_store__query_intervals(s, t0, t0 + 50 * SEC, &cases[c].f,
							 api_series__add, &ser),
			     0);
		cr_assert_eq(ser.n, 5, "case %zu", c);
		cr_assert_eq(ser.period_ns, PERIOD);
		for (int i = 0; i < 5; i++) {
			cr_expect_eq(ser.points[i].time_ns, t0 + i * 10 * SEC);
			cr_expect_eq(ser.points[i].duration_ns, 10 * SEC);
			cr_expect_eq(ser.points[i].samples, cases[c].want[i], "case %zu point %d",
				     c, i);
			sum += ser.points[i].samples;
		}
		/* The same as the full query's total. */
		cr_assert_eq(prof_store__query(s, t0, t0 + 50 * SEC, &cases[c].f, &q), 0);
		cr_assert_eq(q->total_count, sum, "case %zu", c);
		prof_profile__free(q);
		api_series__release(&ser);
	}
	/* A sub-range: intervals 1 and 2 only. */
	{
		struct api_series ser = {0};

		cr_assert_eq(prof_store__query_intervals(s, t0 + 15 * SEC, t0 + 30 * SEC, NULL,
							 api_series__add, &ser),
			     0);
		cr_assert_eq(ser.n, 2);
		cr_assert_eq(ser.points[0].samples, 22);
		api_series__release(&ser);
	}
	cr_assert_eq(prof_store__query_intervals(s, t0, t0, NULL, api_series__add, NULL), -EINVAL);
	prof_store__close(s);
	test_rm_tree(dir);
}
