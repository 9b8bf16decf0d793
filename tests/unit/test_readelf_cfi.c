// SPDX-License-Identifier: MIT
/*
 * The readelf CFI parser (tests/common/readelf_cfi.c), the oracle the
 * unwinder's rows are compared with: a text with every rule form readelf
 * prints, rows of the fixtures checked against their disassembly (objdump
 * finds the instructions that move the CFA), and agreement with libdw's
 * CFA (sym_dso__cfa) at every address of every FDE of three fixtures.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../symbolizer/symbolizer.h"
#include "../common/readelf_cfi.h"
#include "../common/testutil.h"

/* Shapes taken from readelf 2.40 on the fixtures and libc, addresses made up. */
static const char known_text[] =
	"Contents of the .eh_frame section:\n"
	"\n"
	"\n"
	"00000000 0000000000000014 00000000 CIE \"zR\" cf=1 df=-8 ra=16\n"
	"   LOC           CFA      ra    \n"
	"0000000000000000 rsp+8    u     \n"
	"\n"
	"00000018 0000000000000014 0000001c FDE cie=00000000 "
	"pc=0000000000001000..0000000000001022\n"
	"\n"
	"00000030 0000000000000014 00000000 CIE \"zR\" cf=1 df=-8 ra=16\n"
	"   LOC           CFA      ra    \n"
	"0000000000000000 rsp+8    c-8   \n"
	"\n"
	"00000048 0000000000000024 0000001c FDE cie=00000030 "
	"pc=0000000000002020..0000000000002080\n"
	"   LOC           CFA      ra    \n"
	"0000000000002020 rsp+16   c-8   \n"
	"0000000000002026 rsp+24   c-8   \n"
	"0000000000002030 exp      c-8   \n"
	"\n"
	"00000070 000000000000001c 00000044 FDE cie=00000030 "
	"pc=0000000000003000..0000000000003010\n"
	"   LOC           CFA      rbp   ra    \n"
	"0000000000003000 rsp+8    u     c-8   \n"
	"0000000000003001 rsp+16   c-16  c-8   \n"
	"0000000000003004 rbp+16   c-16  c-8   \n"
	"000000000000300a rsp+8    c-16  c-8   \n"
	"\n"
	"00000090 0000000000000028 00000094 FDE cie=00000030 "
	"pc=0000000000004000..0000000000004050\n"
	"   LOC           CFA      rbx   rbp   rsp   r12   r13   r14   r15   ra    \n"
	"0000000000004000 rsp+8    u     u     u     u     u     u     u     c-8   \n"
	"0000000000004033 rdi+0    c+0   r9 (r9) r8 (r8) c+16  c+24  c+32  c+40  r1 (rdx) \n"
	"\n"
	"000000b8 ZERO terminator\n"
	"\n"
	"Contents of the .debug_frame section:\n"
	"\n"
	"00000000 0000000000000014 ffffffff CIE \"\" cf=1 df=-8 ra=16\n"
	"   LOC           CFA      ra    \n"
	"0000000000000000 rsp+8    c-8   \n"
	"\n"
	"00000018 0000000000000014 00000000 FDE cie=00000000 "
	"pc=0000000000002000..0000000000002100\n"
	"   LOC           CFA      rbp   ra    \n"
	"0000000000002000 rsp+8    s     c-8   \n"
	"0000000000002010 rsp+32   v+8   c-8   \n"
	"\n";

Test(readelf_cfi, parses_every_rule_form)
{
	struct readelf_cfi *t;
	const struct rcfi_row *r;
	enum rcfi_rule rule;
	int64_t off, roff;
	int reg;

	cr_assert_eq(readelf_cfi__parse(known_text, &t), 0);
	/* An FDE without instructions takes its CIE's initial row: ra undefined (_start). */
	r = readelf_cfi__row_at(t, 0x1010);
	cr_assert_not_null(r);
	cr_expect(r->start == 0x1000 && r->end == 0x1022, "[%#llx, %#llx)",
		  (unsigned long long)r->start, (unsigned long long)r->end);
	cr_expect_eq(r->ra_rule, RCFI_UNDEFINED);
	cr_expect(r->cfa_reg == RCFI_REG_RSP && r->cfa_off == 8);
	cr_expect_null(readelf_cfi__row_at(t, 0x1022), "row beyond the FDE's end");

	/* Row ends: the next row's LOC, the last one the FDE's end. */
	r = readelf_cfi__row_at(t, 0x2025);
	cr_assert_not_null(r);
	cr_expect(r->start == 0x2020 && r->end == 0x2026 && r->cfa_off == 16);
	cr_expect_eq(r->ra_rule, RCFI_OFFSET);
	cr_expect_eq(r->ra_off, -8);
	cr_assert_eq(readelf_cfa_at(t, 0x207f, &reg, &off, &rule, &roff), 0);
	cr_expect_eq(reg, RCFI_CFA_EXPR, "exp CFA");
	cr_expect_eq(rule, RCFI_SAME, "no rbp column: same value");
	/* .eh_frame wins over .debug_frame where both cover an address. */
	cr_expect(!readelf_cfi__row_at(t, 0x2050)->debug_frame);
	r = readelf_cfi__row_at(t, 0x2090);
	cr_assert_not_null(r);
	cr_expect(r->debug_frame && r->cfa_off == 32 && r->rbp_rule == RCFI_VAL_OFFSET &&
		  r->rbp_off == 8);

	/* A frame-pointer prologue, step by step. */
	cr_assert_eq(readelf_cfa_at(t, 0x3000, &reg, &off, &rule, &roff), 0);
	cr_expect(reg == RCFI_REG_RSP && off == 8 && rule == RCFI_SAME, "rbp \"u\": not saved yet");
	cr_assert_eq(readelf_cfa_at(t, 0x3003, &reg, &off, &rule, &roff), 0);
	cr_expect(reg == RCFI_REG_RSP && off == 16 && rule == RCFI_OFFSET && roff == -16);
	cr_assert_eq(readelf_cfa_at(t, 0x3009, &reg, &off, &rule, &roff), 0);
	cr_expect(reg == RCFI_REG_RBP && off == 16 && rule == RCFI_OFFSET && roff == -16);
	cr_assert_eq(readelf_cfa_at(t, 0x300f, &reg, &off, &rule, &roff), 0);
	cr_expect(reg == RCFI_REG_RSP && off == 8);
	cr_expect_eq(readelf_cfa_at(t, 0x3010, &reg, &off, &rule, &roff), -ENOENT);

	/* Register rules print as two tokens: "r9 (r9)". CFA on rdi. */
	r = readelf_cfi__row_at(t, 0x4040);
	cr_assert_not_null(r);
	cr_expect(r->cfa_reg == 5 && r->cfa_off == 0, "cfa reg %d off %lld", r->cfa_reg,
		  (long long)r->cfa_off);
	cr_expect(r->rbp_rule == RCFI_REGISTER && r->rbp_off == 9);
	cr_expect(r->ra_rule == RCFI_REGISTER && r->ra_off == 1);
	cr_expect_eq(readelf_cfi__nrows(t), 12);
	readelf_cfi__free(t);

	cr_expect_eq(readelf_cfi__parse("garbage line here\n", &t), -ENODATA);
	cr_expect_eq(readelf_cfi__parse("00000000 0000000000000014 0000001c FDE cie=00000000 "
					"pc=0000000000001000..0000000000001022\n"
					"   LOC           CFA      ra    \n"
					"0000000000001000 rsp+8\n",
					&t),
		     -EINVAL, "a row with a missing column");
	readelf_cfi__free(NULL);
}

/* Address of the instruction after the first one of @fn containing @insn. */
static uint64_t addr_after(const char *bin, const char *fn, const char *insn)
{
	char arg[128];
	char *argv[] = {"/usr/bin/objdump", "-d", "--no-show-raw-insn", arg, (char *)bin, NULL};
	struct strbuf out = STRBUF_INIT;
	bool found = false;
	uint64_t addr = 0;
	char *line, *save;

	snprintf(arg, sizeof(arg), "--disassemble=%s", fn);
	cr_assert_eq(test_run(argv, &out, NULL, 30000), 0, "objdump %s failed", bin);
	for (line = strtok_r(out.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a;

		if (sscanf(line, " %llx:", &a) != 1 || !strchr(line, '\t'))
			continue;
		if (found) {
			addr = a;
			break;
		}
		found = strstr(line, insn) != NULL;
	}
	strbuf_release(&out);
	cr_assert_neq(addr, 0, "no instruction after '%s' in %s of %s", insn, fn, bin);
	return addr;
}

static uint64_t addr_of(const char *bin, const char *fn)
{
	char *argv[] = {"/usr/bin/nm", (char *)bin, NULL};
	struct strbuf out = STRBUF_INIT;
	uint64_t addr = 0;
	char *line, *save;

	cr_assert_eq(test_run(argv, &out, NULL, 30000), 0, "nm %s failed", bin);
	for (line = strtok_r(out.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a;
		char type, name[128];

		if (sscanf(line, "%llx %c %127s", &a, &type, name) == 3 && !strcmp(name, fn))
			addr = a;
	}
	strbuf_release(&out);
	cr_assert_neq(addr, 0, "%s not in %s", fn, bin);
	return addr;
}

static void expect_cfa(const struct readelf_cfi *t, uint64_t a, const char *where, int want_reg,
		       int64_t want_off, enum rcfi_rule want_rbp, int64_t want_rbp_off)
{
	enum rcfi_rule rule;
	int64_t off, roff;
	int reg;

	cr_assert_eq(readelf_cfa_at(t, a, &reg, &off, &rule, &roff), 0, "%s (%#llx): no row", where,
		     (unsigned long long)a);
	cr_expect(reg == want_reg && off == want_off,
		  "%s (%#llx): CFA reg %d + %lld, objdump says reg %d + %lld", where,
		  (unsigned long long)a, reg, (long long)off, want_reg, (long long)want_off);
	cr_expect(rule == want_rbp && (rule != RCFI_OFFSET || roff == want_rbp_off),
		  "%s (%#llx): rbp rule %d off %lld, want %d off %lld", where,
		  (unsigned long long)a, rule, (long long)roff, want_rbp, (long long)want_rbp_off);
}

Test(readelf_cfi, fixture_rows_match_disassembly)
{
	char fp[256], cfi[256];
	struct readelf_cfi *t;
	uint64_t a;

	/* fpchains (frame pointers): push %rbp; mov %rsp,%rbp; call; pop %rbp. */
	test_build_path("fixtures/fpchains", fp, sizeof(fp));
	cr_assert_eq(readelf_cfi__load(fp, &t), 0, "readelf on %s", fp);
	a = addr_of(fp, "fp_e2");
	expect_cfa(t, a, "fp_e2 entry", RCFI_REG_RSP, 8, RCFI_SAME, 0);
	expect_cfa(t, addr_after(fp, "fp_e2", "push   %rbp"), "fp_e2 after push %rbp", RCFI_REG_RSP,
		   16, RCFI_OFFSET, -16);
	expect_cfa(t, addr_after(fp, "fp_e2", "mov    %rsp,%rbp"), "fp_e2 after mov %rsp,%rbp",
		   RCFI_REG_RBP, 16, RCFI_OFFSET, -16);
	expect_cfa(t, addr_after(fp, "fp_e2", "pop    %rbp"), "fp_e2 after pop %rbp", RCFI_REG_RSP,
		   8, RCFI_OFFSET, -16);
	readelf_cfi__free(t);

	/* cfichains (no frame pointers, PIE): push %rbx; sub $0x60,%rsp in cfi_rec. */
	test_build_path("fixtures/cfichains", cfi, sizeof(cfi));
	cr_assert_eq(readelf_cfi__load(cfi, &t), 0, "readelf on %s", cfi);
	a = addr_of(cfi, "cfi_rec");
	expect_cfa(t, a, "cfi_rec entry", RCFI_REG_RSP, 8, RCFI_SAME, 0);
	expect_cfa(t, addr_after(cfi, "cfi_rec", "push   %rbx"), "cfi_rec after push %rbx",
		   RCFI_REG_RSP, 16, RCFI_SAME, 0);
	expect_cfa(t, addr_after(cfi, "cfi_rec", "sub    $0x60,%rsp"), "cfi_rec after sub",
		   RCFI_REG_RSP, 112, RCFI_SAME, 0);
	/* _start: the return address is undefined, where every unwinder must stop. */
	{
		const struct rcfi_row *r = readelf_cfi__row_at(t, addr_of(cfi, "_start"));

		cr_assert_not_null(r, "no row for _start");
		cr_expect_eq(r->ra_rule, RCFI_UNDEFINED, "_start's ra rule is %d", r->ra_rule);
	}
	readelf_cfi__free(t);
}

/* libdw's CFA (sym_dso__cfa) and readelf agree at every address of every FDE. */
Test(readelf_cfi, agrees_with_libdw_at_every_address, .timeout = 60)
{
	static const char *const files[] = {"fixtures/fpchains", "fixtures/cfichains",
					    "fixtures/libcfilib.so"};

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		char path[256], first[256] = "";
		struct sym_dsos *c = sym_dsos__new();
		struct readelf_cfi *t;
		struct sym_dso *d;
		size_t checked = 0, bad = 0, expr = 0;

		test_build_path(files[f], path, sizeof(path));
		cr_assert_eq(readelf_cfi__load(path, &t), 0, "readelf on %s", path);
		d = sym_dsos__get_path(c, path);
		cr_assert_not_null(d, "cannot open %s", path);
		for (size_t i = 0; i < readelf_cfi__nrows(t); i++) {
			const struct rcfi_row *r = readelf_cfi__row(t, i);

			for (uint64_t a = r->start; a < r->end; a++) {
				int reg, rc;
				int64_t off;

				rc = sym_dso__cfa(d, a, &reg, &off);
				if (r->cfa_reg == RCFI_CFA_EXPR) {
					expr++;
					if (rc != -EOPNOTSUPP && bad++ == 0)
						snprintf(first, sizeof(first),
							 "%#llx: readelf exp, libdw rc %d",
							 (unsigned long long)a, rc);
					continue;
				}
				checked++;
				if ((rc || reg != r->cfa_reg || off != r->cfa_off) && bad++ == 0)
					snprintf(first, sizeof(first),
						 "%#llx: readelf reg %d + %lld, libdw rc %d reg %d "
						 "+ %lld",
						 (unsigned long long)a, r->cfa_reg,
						 (long long)r->cfa_off, rc, reg, (long long)off);
			}
		}
		cr_log_info("%s: %zu rows, %zu addresses agree, %zu with an expression CFA",
			    files[f], readelf_cfi__nrows(t), checked, expr);
		cr_expect_gt(checked, 100, "%s: only %zu addresses checked", files[f], checked);
		cr_expect_eq(bad, 0, "%s: %zu addresses disagree; first: %s", files[f], bad, first);
		sym_dso__put(d);
		sym_dsos__free(c);
		readelf_cfi__free(t);
	}
}

/* Every line of libc's and ld.so's tables is understood (readelf exits 1 on them). */
Test(readelf_cfi, parses_libc_and_ld_so, .timeout = 60)
{
	static const char *const files[] = {"/lib/x86_64-linux-gnu/libc.so.6",
					    "/lib64/ld-linux-x86-64.so.2"};

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		struct readelf_cfi *t;
		int rc;

		if (access(files[f], R_OK))
			continue;
		rc = readelf_cfi__load(files[f], &t);
		cr_expect_eq(rc, 0, "readelf_cfi__load(%s): %d", files[f], rc);
		if (rc)
			continue;
		cr_expect_gt(readelf_cfi__nrows(t), 1000, "%s: %zu rows", files[f],
			     readelf_cfi__nrows(t));
		readelf_cfi__free(t);
	}
}
