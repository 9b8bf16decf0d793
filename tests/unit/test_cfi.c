// SPDX-License-Identifier: MIT
/*
 * sym_dso__cfa() against the fpchains fixture (non-PIE, frame pointers):
 * at a function's first byte the CFA is rsp + 8; once `push %rbp; mov
 * %rsp,%rbp` ran it is rbp + 16; in fp_leaf_e, which sets up no frame, it
 * stays rsp + 8 throughout. Addresses come from nm.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../symbolizer/symbolizer.h"
#include "../common/testutil.h"

#define REG_RBP 6
#define REG_RSP 7

static uint64_t nm_addr(const char *bin, const char *sym, uint64_t *size)
{
	char *argv[] = {"/usr/bin/nm", "-S", (char *)bin, NULL};
	struct strbuf out = STRBUF_INIT;
	uint64_t addr = 0;
	char *line, *save;

	cr_assert_eq(test_run(argv, &out, NULL, 20000), 0, "nm %s failed", bin);
	for (line = strtok_r(out.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, s;
		char type, name[128];

		if (sscanf(line, "%llx %llx %c %127s", &a, &s, &type, name) == 4 &&
		    !strcmp(name, sym)) {
			addr = a;
			*size = s;
		}
	}
	strbuf_release(&out);
	cr_assert_neq(addr, 0, "%s not found in %s", sym, bin);
	return addr;
}

Test(cfi, frame_pointer_prologue_and_frameless_leaf)
{
	char bin[256];
	struct sym_dsos *c = sym_dsos__new();
	struct sym_dso *d;
	uint64_t size, a;
	int64_t off;
	int reg;
	bool saw_rbp = false;

	test_build_path("fixtures/fpchains", bin, sizeof(bin));
	d = sym_dsos__get_path(c, bin);
	cr_assert_not_null(d, "cannot open %s", bin);

	a = nm_addr(bin, "fp_e2", &size);
	cr_assert_eq(sym_dso__cfa(d, a, &reg, &off), 0);
	cr_expect(reg == REG_RSP && off == 8, "fp_e2 entry: reg %d off %lld", reg, (long long)off);
	for (uint64_t i = 1; i < size; i++)
		if (sym_dso__cfa(d, a + i, &reg, &off) == 0 && reg == REG_RBP && off == 16)
			saw_rbp = true;
	cr_expect(saw_rbp, "fp_e2 never switches its CFA to rbp + 16");

	a = nm_addr(bin, "fp_leaf_e", &size);
	for (uint64_t i = 0; i < size; i++) {
		cr_assert_eq(sym_dso__cfa(d, a + i, &reg, &off), 0, "no CFI at fp_leaf_e+%llu",
			     (unsigned long long)i);
		cr_expect(reg == REG_RSP && off == 8, "fp_leaf_e+%llu: reg %d off %lld",
			  (unsigned long long)i, reg, (long long)off);
	}
	cr_expect_eq(sym_dso__cfa(d, 0x10, &reg, &off), -ENOENT, "CFI for an unmapped address");
	sym_dso__put(d);
	sym_dsos__free(c);
}
