// SPDX-License-Identifier: MIT
/* The symbolizer's idle-dso cache: bounded by count and by bytes, LRU. */
#include <criterion/criterion.h>

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
