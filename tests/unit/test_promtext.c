// SPDX-License-Identifier: MIT
/*
 * Tests for the strict Prometheus text-format checker in tests/common: it
 * must accept what Prometheus accepts and refuse each kind of mistake, or
 * the /metrics tests built on it prove nothing.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "tests/common/promtext.h"

#define HT(n, t) "# HELP " n " Help.\n# TYPE " n " " t "\n"

Test(promtext, accepts_valid_text)
{
	static const char *const ok[] = {
		"",
		HT("a_total", "counter") "a_total 1\n",
		HT("g", "gauge") "g 1.5e3\ng{x=\"1\"} -2\ng{x=\"2\",y=\"a\\\"b\\\\c\\nd\"} NaN\n",
		HT("g", "gauge") "g +Inf\ng{k=\"v\"} -Inf 1700000000000\n",
		"# TYPE g gauge\ng 0\n", /* HELP is optional */
		"# a plain comment\n" HT("g", "gauge") "\ng 1\n",
		HT("h", "histogram") "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
				     "h_count 2\n",
		HT("s", "summary") "s{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
		HT("g", "gauge") "g{a=\"1\",} 1\n", /* a trailing comma is allowed */
		HT("a_total", "counter") "a_total 1\n" HT("b", "gauge") "b 2\n",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct prom_result r;

		cr_expect_eq(prom_check(ok[i], &r), 0, "case %zu: %s", i, r.error);
		prom_result__free(&r);
	}
}

Test(promtext, refuses_each_mistake)
{
	static const char *const bad[] = {
		HT("g", "gauge") "g 1", /* no final newline */
		"g 1\n", /* no TYPE */
		HT("g", "gauge") "g 1\n# TYPE g gauge\n", /* TYPE twice / after samples */
		"# TYPE g gauge\n# TYPE g gauge\ng 1\n", /* TYPE twice */
		"# HELP g a\n# HELP g b\n# TYPE g gauge\ng 1\n", /* HELP twice */
		"# HELP g bad \\t escape\n# TYPE g gauge\ng 1\n", /* HELP escape */
		"# TYPE g gaugee\ng 1\n", /* unknown type */
		"# TYPE a counter\na 1\n", /* counter without _total */
		HT("a_total", "counter") "a_total -1\n", /* negative counter */
		HT("g", "gauge") "g{x=\"1\"} 1\ng{x=\"1\"} 2\n", /* series twice */
		HT("g",
		   "gauge") "g{x=\"1\",y=\"2\"} 1\ng{y=\"2\",x=\"1\"} 2\n", /* same, reordered */
		HT("g", "gauge") "g{x=\"1\",x=\"2\"} 1\n", /* label twice */
		HT("g", "gauge") "g{__x=\"1\"} 1\n", /* reserved label */
		HT("g", "gauge") "g{x=\"a\\tb\"} 1\n", /* bad escape */
		HT("g", "gauge") "g{x=\"1} 1\n", /* unterminated value */
		HT("g", "gauge") "g{x=1} 1\n", /* unquoted */
		HT("g", "gauge") "g{1x=\"1\"} 1\n", /* bad label name */
		HT("g", "gauge") "g  1\n", /* two spaces */
		HT("g", "gauge") "g 1x\n", /* bad value */
		HT("g", "gauge") "g inf\n", /* Go spells it +Inf */
		HT("g", "gauge") "g 0x10\n", /* no hex */
		HT("g", "gauge") "g 1 1.5\n", /* bad timestamp */
		HT("g", "gauge") "g 1 \n", /* empty timestamp */
		HT("g", "gauge") "g-x 1\n", /* bad metric name */
		HT("a", "gauge") HT("b", "gauge") "a 1\nb 1\na{x=\"1\"} 1\n", /* not together */
		HT("a_total", "counter") "a_total_sum 1\n", /* not a suffix a counter has */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct prom_result r;

		cr_expect_eq(prom_check(bad[i], &r), -1, "case %zu accepted:\n%s", i, bad[i]);
		cr_expect_gt(strlen(r.error), 0, "case %zu: no reason", i);
		prom_result__free(&r);
	}
}

Test(promtext, counts_families_and_samples)
{
	struct prom_result r;
	const struct prom_family *f;

	cr_assert_eq(
		prom_check(HT("a_total", "counter") "a_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n" HT(
				   "g", "gauge") "g 1\n",
			   &r),
		0, "%s", r.error);
	cr_assert_eq(r.nfamilies, 2);
	cr_assert_eq(r.samples, 3);
	f = prom_find(&r, "a_total");
	cr_assert_not_null(f);
	cr_assert_str_eq(f->type, "counter");
	cr_assert_eq(f->samples, 2);
	cr_assert_null(prom_find(&r, "nope"));
	prom_result__free(&r);
}
