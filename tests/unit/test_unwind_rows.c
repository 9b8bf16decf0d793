// SPDX-License-Identifier: MIT
/*
 * The unwind rows the profiler loads into BPF (symbolizer/cfi.c,
 * sym_dso__unwind_rows) against an independent reading of the same CFI:
 * `readelf --debug-dump=frames-interp` (tests/common/readelf_cfi.h), at
 * every address of every FDE, for the frame-pointer-less fixtures, libc and
 * ld.so. Plus the row format's edge cases: gaps between FDEs, PLT entries,
 * the signal trampoline and _start.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../symbolizer/symbolizer.h"
#include "../common/readelf_cfi.h"
#include "../common/testutil.h"

struct agreement {
	size_t checked, bad, expr;
	char first[256];
};

/* Whether our row says what readelf's row says, for what an x86-64 unwinder needs. */
static bool row_agrees(const struct sym_unwind_row *u, const struct rcfi_row *r)
{
	if (r->ra_rule == RCFI_UNDEFINED)
		return u->rule == SYM_CFA_END;
	if (r->ra_rule != RCFI_OFFSET || r->ra_off != -8)
		return u->rule == SYM_CFA_UNSUPPORTED || u->rule == SYM_CFA_SIGNAL;
	if (r->cfa_reg == RCFI_REG_RSP) {
		if (u->rule != SYM_CFA_SP || u->cfa_off != r->cfa_off)
			return false;
	} else if (r->cfa_reg == RCFI_REG_RBP) {
		if (u->rule != SYM_CFA_FP || u->cfa_off != r->cfa_off)
			return false;
	} else {
		/* Another register (r10 during stack realignment): not followed. */
		return u->rule == SYM_CFA_UNSUPPORTED;
	}
	if (r->rbp_rule == RCFI_OFFSET)
		return u->fp_off == r->rbp_off;
	return u->fp_off == 0; /* same value, or not saved yet */
}

static void compare_file(const char *path, struct agreement *a)
{
	struct sym_dsos *c = sym_dsos__new();
	struct sym_unwind_row *rows = NULL;
	struct sym_unwind_stats st;
	struct readelf_cfi *t;
	struct sym_dso *d;
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	cr_assert_eq(readelf_cfi__load(path, &t), 0, "readelf on %s", path);
	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d, "cannot open %s", path);
	cr_assert_eq(sym_dso__unwind_rows(d, &rows, &n, &st), 0, "%s: no rows", path);
	cr_assert_gt(n, 0);
	for (size_t i = 1; i < n; i++)
		cr_assert_gt(rows[i].pc, rows[i - 1].pc, "%s: rows not sorted at %zu", path, i);
	for (size_t i = 0; i < readelf_cfi__nrows(t); i++) {
		const struct rcfi_row *r = readelf_cfi__row(t, i);

		if (r->debug_frame && readelf_cfi__row_at(t, r->start) != r)
			continue; /* .eh_frame covers it: that is the one used */
		for (uint64_t addr = r->start; addr < r->end; addr++) {
			const struct sym_unwind_row *u = sym_unwind_rows__find(rows, n, addr);

			if (r->cfa_reg == RCFI_CFA_EXPR) {
				/* PLT, signal trampoline, realignment, or not followed. */
				a->expr++;
				if ((!u || u->rule == SYM_CFA_SP || u->rule == SYM_CFA_FP ||
				     u->rule == SYM_CFA_NONE) &&
				    a->bad++ == 0)
					snprintf(a->first, sizeof(a->first),
						 "%#llx: readelf exp, ours rule %d",
						 (unsigned long long)addr, u ? u->rule : -1);
				continue;
			}
			a->checked++;
			if ((!u || !row_agrees(u, r)) && a->bad++ == 0)
				snprintf(a->first, sizeof(a->first),
					 "%#llx: readelf cfa r%d%+lld rbp %d%+lld ra %d%+lld; ours "
					 "rule "
					 "%d cfa %+lld fp %+d",
					 (unsigned long long)addr, r->cfa_reg,
					 (long long)r->cfa_off, r->rbp_rule, (long long)r->rbp_off,
					 r->ra_rule, (long long)r->ra_off, u ? u->rule : -1,
					 u ? (long long)u->cfa_off : 0LL, u ? u->fp_off : 0);
		}
	}
	cr_log_info("%s: %zu FDEs, %zu rows (%zu B as BPF rows); %zu addresses agree with "
		    "readelf, %zu expression CFAs, %llu rows not followed",
		    path, (size_t)st.fdes, n, n * 8, a->checked - a->bad, a->expr,
		    (unsigned long long)st.unsupported);
	free(rows);
	sym_dso__put(d);
	sym_dsos__free(c);
	readelf_cfi__free(t);
}

Test(unwind_rows, fixtures_agree_with_readelf_everywhere, .timeout = 60)
{
	static const char *const files[] = {"fixtures/cfichains", "fixtures/cfichains-stripped",
					    "fixtures/libcfilib.so", "fixtures/fpchains"};

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		char path[256];
		struct agreement a;

		test_build_path(files[f], path, sizeof(path));
		compare_file(path, &a);
		cr_expect_gt(a.checked, 100, "%s: only %zu addresses checked", files[f], a.checked);
		cr_expect_eq(a.bad, 0, "%s: %zu addresses disagree; first: %s", files[f], a.bad,
			     a.first);
	}
}

Test(unwind_rows, libc_and_ld_so_agree_with_readelf, .timeout = 120)
{
	static const char *const files[] = {"/lib/x86_64-linux-gnu/libc.so.6",
					    "/lib64/ld-linux-x86-64.so.2"};

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		struct agreement a;

		compare_file(files[f], &a);
		cr_expect_gt(a.checked, 10000, "%s: only %zu addresses checked", files[f],
			     a.checked);
		cr_expect_eq(a.bad, 0, "%s: %zu addresses disagree; first: %s", files[f], a.bad,
			     a.first);
	}
}

/* Outside every FDE there is a NONE row: the previous function's rule does not leak. */
Test(unwind_rows, gaps_between_fdes_are_marked)
{
	struct sym_dsos *c = sym_dsos__new();
	struct sym_unwind_row *rows = NULL;
	struct readelf_cfi *t;
	struct sym_dso *d;
	char path[256];
	size_t n = 0, gaps = 0;

	test_build_path("fixtures/cfichains", path, sizeof(path));
	cr_assert_eq(readelf_cfi__load(path, &t), 0);
	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d);
	cr_assert_eq(sym_dso__unwind_rows(d, &rows, &n, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		if (rows[i].rule != SYM_CFA_NONE)
			continue;
		gaps++;
		cr_expect_null(readelf_cfi__row_at(t, rows[i].pc),
			       "%#llx is marked as a gap but readelf has a row there",
			       (unsigned long long)rows[i].pc);
	}
	cr_expect_gt(gaps, 0, "no gap rows at all");
	/* Past the last row: a NONE row ends the table. */
	cr_expect_eq(rows[n - 1].rule, SYM_CFA_NONE);
	free(rows);
	sym_dso__put(d);
	sym_dsos__free(c);
	readelf_cfi__free(t);
}

/*
 * The special rows: _start is the outermost frame, the signal trampoline
 * (libc's __restore_rt, an "S" augmentation FDE) is a SIGNAL row, and the
 * .plt entries have the PLT expression.
 */
Test(unwind_rows, start_plt_and_signal_rows)
{
	struct sym_dsos *c = sym_dsos__new();
	struct sym_unwind_row *rows = NULL;
	struct sym_dso *d;
	char path[256];
	size_t n = 0, ends = 0, signals = 0, plts = 0;

	test_build_path("fixtures/cfichains", path, sizeof(path));
	d = sym_dsos__get_path(c, path);
	cr_assert_not_null(d);
	cr_assert_eq(sym_dso__unwind_rows(d, &rows, &n, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		ends += rows[i].rule == SYM_CFA_END;
		plts += rows[i].rule == SYM_CFA_PLT;
	}
	cr_expect_eq(ends, 1, "the fixture has %zu outermost rows, want 1 (_start)", ends);
	cr_expect_geq(plts, 1, "the fixture's .plt has no PLT row");
	free(rows);
	sym_dso__put(d);

	d = sym_dsos__get_path(c, "/lib/x86_64-linux-gnu/libc.so.6");
	cr_assert_not_null(d);
	cr_assert_eq(sym_dso__unwind_rows(d, &rows, &n, NULL), 0);
	ends = plts = 0;
	for (size_t i = 0; i < n; i++) {
		signals += rows[i].rule == SYM_CFA_SIGNAL;
		ends += rows[i].rule == SYM_CFA_END;
		plts += rows[i].rule == SYM_CFA_PLT;
		if (i && rows[i].rule == SYM_CFA_PLT)
			cr_expect(rows[i].plt_cut == 10 || rows[i].plt_cut == 11, "PLT cut %u",
				  rows[i].plt_cut);
	}
	cr_expect_eq(signals, 1, "libc has %zu signal rows, want 1 (__restore_rt)", signals);
	cr_expect_geq(ends, 2, "libc's clone/clone3 children are outermost frames");
	free(rows);
	sym_dso__put(d);
	sym_dsos__free(c);
}
