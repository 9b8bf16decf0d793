// SPDX-License-Identifier: MIT
/* The symbolizer's idle-dso cache: bounded by count and by bytes, LRU. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../symbolizer/symbolizer.h"
#include "../common/testutil.h"

static struct sym_dso *loaded(struct sym_dsos *c, const char *rel)
{
	char path[256];
	struct sym_result r;
	struct sym_dso *d;

	test_build_path(rel, path, sizeof(path));
	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d, "cannot open %s", path);
	sym_dso__resolve(d, 0x1000, &r, NULL); /* loads the symbol table */
	return d;
}

Test(dso_cache, idle_files_bounded_by_bytes_lru)
{
	struct sym_dsos *c = sym_dsos__new();
	struct sym_stats st;
	struct sym_dso *a = loaded(c, "fixtures/fpchains"), *b = loaded(c, "fixtures/burn");

	sym_dsos__stats(c, &st);
	cr_assert_eq(st.dsos, 2);
	cr_assert_gt(st.bytes, 0);
	/* Unbounded: released files stay, ready for the next process that maps them. */
	sym_dso__put(a);
	sym_dso__put(b);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 2, "idle files were dropped without a bound");
	/* A bound below what they hold drops the least recently released first. */
	sym_dsos__set_idle_budget(c, st.bytes - 1);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 1, "one idle file should remain, %llu do",
		     (unsigned long long)st.dsos);
	a = loaded(c, "fixtures/burn"); /* still cached: the same object comes back */
	cr_expect_eq(a, b, "the most recently released file was evicted instead of the oldest");
	sym_dso__put(a);
	sym_dsos__set_idle_budget(c, 0);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 0);
	cr_expect_eq(st.bytes, 0, "evicted files still counted: %llu bytes",
		     (unsigned long long)st.bytes);
	sym_dsos__free(c);
}

/* Idle files expire by age, oldest first; a file in use never does. */
Test(dso_cache, idle_files_expire_by_age)
{
	struct sym_dsos *c = sym_dsos__new();
	struct sym_stats st;
	struct sym_dso *live = loaded(c, "fixtures/inlines"), *a, *b;
	uint64_t between, live_bytes;

	sym_dsos__stats(c, &st);
	live_bytes = st.bytes;
	a = loaded(c, "fixtures/fpchains");
	b = loaded(c, "fixtures/burn");

	sym_dso__put(a);
	usleep(2000);
	between = now_mono_ns();
	usleep(2000);
	sym_dso__put(b);
	cr_expect_eq(sym_dsos__expire_idle(c, between - 1000000000ULL), 0,
		     "a file idle for 2 ms expired under a 1 s age");
	cr_expect_eq(sym_dsos__expire_idle(c, between), 1, "only the older idle file expires");
	a = loaded(c, "fixtures/burn");
	cr_expect_eq(a, b, "the younger idle file was freed");
	sym_dso__put(a);
	cr_expect_eq(sym_dsos__expire_idle(c, now_mono_ns() + 1), 1);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dsos, 1, "the file in use must stay, %llu dsos",
		     (unsigned long long)st.dsos);
	cr_expect_eq(st.idle_expired, 2);
	cr_expect_eq(st.bytes, live_bytes, "expired files still counted");
	sym_dso__put(live);
	sym_dsos__free(c);
}

/* File offset of symbol @sym in @path (non-PIE or PIE alike: vaddr -> offset via readelf). */
static int frames_at(struct sym_dso *d, const char *path, const char *sym)
{
	char cmd[512];
	struct sym_frame fr[8];
	unsigned long long addr = 0;
	uint64_t off = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm '%s' | awk '$3 == \"%s\" {print $1}'", path, sym);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%llx", &addr), 1, "no %s in %s", sym, path);
	pclose(f);
	/* The fixture is PIE with its text at vaddr == file offset (first PT_LOAD at 0). */
	off = addr;
	return sym_dso__frames(d, off, fr, 8);
}

Test(dso_cache, dwarf_budget_evicts_idle_sessions_and_retries)
{
	char a_path[256], b_path[256];
	struct sym_dsos *c = sym_dsos__new();
	struct sym_dso *a, *b;
	struct sym_stats st;
	uint64_t one;

	test_build_path("fixtures/inlines", a_path, sizeof(a_path));
	test_build_path("fixtures/inlines-dwarf4", b_path, sizeof(b_path));
	a = sym_dsos__get_path(c, a_path);
	cr_assert_not_null(a);
	cr_assert_gt(frames_at(a, a_path, "hot_scale"), 0, "no DWARF frames in %s", a_path);
	sym_dsos__stats(c, &st);
	one = st.dwarf_bytes;
	cr_assert_gt(one, 0);

	/* Room for one session only. The idle one makes way for the live one. */
	sym_dsos__set_dwarf_budget(c, one + one / 2);
	sym_dso__put(a);
	b = sym_dsos__get_path(c, b_path);
	cr_assert_not_null(b);
	cr_expect_gt(frames_at(b, b_path, "hot_scale"), 0, "the idle session was not evicted");
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dwarf_over_budget, 0);
	cr_expect_leq(st.dwarf_bytes, one + one / 2);

	/* No budget: refused; a larger one later: the same file retries and succeeds. */
	sym_dso__put(b);
	sym_dsos__set_idle_budget(c, 0); /* drop the idle ones, and their sessions */
	sym_dsos__set_dwarf_budget(c, 0);
	a = sym_dsos__get_path(c, a_path);
	cr_expect_eq(frames_at(a, a_path, "hot_scale"), -ENOBUFS);
	sym_dsos__set_dwarf_budget(c, UINT64_MAX);
	cr_expect_gt(frames_at(a, a_path, "hot_scale"), 0, "a refused file never retried");
	sym_dso__put(a);
	sym_dsos__free(c);
}

/* DWARF of a file in use closes when no lookup needed it lately, and opens again on demand. */
Test(dso_cache, unused_dwarf_of_a_live_file_is_closed_and_reopened)
{
	char path[256];
	struct sym_dsos *c = sym_dsos__new();
	struct sym_stats st;
	struct sym_dso *d;
	uint64_t before;
	int n;

	test_build_path("fixtures/inlines", path, sizeof(path));
	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d);
	n = frames_at(d, path, "hot_scale");
	cr_assert_gt(n, 0, "no DWARF frames in %s", path);
	sym_dsos__stats(c, &st);
	cr_assert_eq(st.dwarf_loaded, 1);
	cr_assert_gt(st.dwarf_bytes, 0);

	before = now_mono_ns();
	cr_expect_eq(sym_dsos__expire_dwarf(c, before - 1000000000ULL), 0,
		     "a session used just now was closed");
	cr_expect_eq(sym_dsos__expire_dwarf(c, now_mono_ns() + 1), 1);
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dwarf_loaded, 0, "the session is still counted as open");
	cr_expect_eq(st.dwarf_bytes, 0, "its budget was not given back");
	cr_expect_eq(st.dwarf_expired, 1);
	cr_expect_eq(st.dsos, 1, "the file itself must stay cached");

	cr_expect_eq(frames_at(d, path, "hot_scale"), n,
		     "the reopened session answers differently");
	sym_dsos__stats(c, &st);
	cr_expect_eq(st.dwarf_loaded, 1);
	/* An idle file's DWARF goes with the file (sym_dsos__expire_idle), not here. */
	sym_dso__put(d);
	cr_expect_eq(sym_dsos__expire_dwarf(c, now_mono_ns() + 1), 0);
	sym_dsos__free(c);
}
