// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../symbolizer/symbolizer.h"

struct dm_case {
	const char *in;
	const char *want; /* NULL: returned unchanged */
};

/*
 * Expected forms are libiberty's with DMGL_PARAMS | DMGL_ANSI, as c++filt prints them
 * (except that c++filt also shows Rust v0 crate disambiguators, "mycrate[..]").
 */
static const struct dm_case cases[] = {
	{"_Z3runRSt6vectorIiSaIiEEm",
	 "run(std::vector<int, std::allocator<int> >&, unsigned long)"},
	{"_ZN6shapes3BoxImE4spinEm.isra.0",
	 "shapes::Box<unsigned long>::spin(unsigned long) [clone .isra.0]"},
	{"_ZN4core3fmt5write17h0123456789abcdefE", "core::fmt::write"}, /* Rust legacy */
	{"_RNvCs15kBYyAo9fc_7mycrate3foo", "mycrate::foo"}, /* Rust v0 */
	{"main", NULL},
	{"_start", NULL},
	{"_Zgarbage", NULL},
	{"", NULL},
};

Test(demangle, cpp_rust_and_plain_names)
{
	struct sym_demangler *d = sym_demangler__new(0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *got = sym_demangle(d, cases[i].in);

		if (cases[i].want)
			cr_expect_str_eq(got, cases[i].want, "%s", cases[i].in);
		else
			cr_expect_eq(got, cases[i].in, "%s should come back unchanged, got %s",
				     cases[i].in, got);
	}
	cr_expect_null(sym_demangle(d, NULL));
	sym_demangler__free(d);
}

Test(demangle, cache_hits_and_bound)
{
	struct sym_demangler *d = sym_demangler__new(4);
	uint64_t entries, lookups, hits;
	char name[64];

	const char *a = sym_demangle(d, "_Z3runRSt6vectorIiSaIiEEm");
	const char *b = sym_demangle(d, "_Z3runRSt6vectorIiSaIiEEm");

	cr_expect_eq(a, b, "a cached name is returned from the cache");
	sym_demangler__stats(d, &entries, &lookups, &hits);
	cr_expect_eq(entries, 1);
	cr_expect_eq(lookups, 2);
	cr_expect_eq(hits, 1);
	/* Past twice the bound nothing more is cached, but names still demangle. */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "_Z%zuf%dv", strlen("f") + (i >= 10 ? 2 : 1), i);
		cr_expect_neq(sym_demangle(d, name), NULL);
	}
	sym_demangler__stats(d, &entries, &lookups, &hits);
	cr_expect_leq(entries, 7, "cache grew to %llu entries", (unsigned long long)entries);
	cr_expect_str_eq(sym_demangle(d, "_Z2f3v"), "f3()");
	sym_demangler__trim(d);
	sym_demangler__stats(d, &entries, &lookups, &hits);
	cr_expect_eq(entries, 0, "trim empties an over-full cache");
	sym_demangler__free(d);
}
