/* SPDX-License-Identifier: MIT */
/*
 * tests/common/readelf_cfi.h — an independent reading of a file's CFI: the
 * table that `readelf --debug-dump=frames-interp FILE` prints, parsed into
 * rows, so that the unwinder's own rows can be compared with it at every
 * address of every FDE (issue 3).
 *
 * What readelf prints, per FDE, is one row per location where a rule
 * changes: LOC, the CFA rule ("rsp+8", "rbp+16", "rdi+0", "exp") and one
 * column per register the CIE or FDE mentions: "u" undefined (or not
 * touched yet: readelf prints both alike, so "u" in the rbp column is
 * reported as RCFI_SAME, "not saved"; in the ra column as RCFI_UNDEFINED), "s" same
 * value, "c-16" saved at CFA-16, "v+8" value CFA+8, "r3 (rbx)" in register
 * 3, "exp"/"vexp" a DWARF expression. A register without a column has no
 * rule (same value, for our purpose). An FDE without instructions prints no
 * table: its rule is its CIE's initial row, for the whole range.
 *
 * Addresses are ELF virtual addresses of the file, as readelf prints them.
 * Rows of .eh_frame and .debug_frame are both kept; lookups prefer
 * .eh_frame, as a profiler would.
 */
#ifndef BPFPROF_READELF_CFI_H
#define BPFPROF_READELF_CFI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DWARF register numbers on x86-64 (System V psABI, figure 3.36). */
#define RCFI_REG_RBP 6
#define RCFI_REG_RSP 7
#define RCFI_REG_RA 16
/* cfa_reg of a row whose CFA is a DWARF expression ("exp"). */
#define RCFI_CFA_EXPR (-1)

enum rcfi_rule {
	RCFI_SAME = 0, /* "s", or no column: the caller's value is the current one */
	RCFI_UNDEFINED, /* "u": not recoverable (the outermost frame, for ra) */
	RCFI_OFFSET, /* "c-16": saved at CFA + off */
	RCFI_VAL_OFFSET, /* "v+8": the value is CFA + off */
	RCFI_REGISTER, /* "r3 (rbx)": in register off */
	RCFI_EXPR, /* "exp": saved at an address computed by an expression */
	RCFI_VAL_EXPR, /* "vexp" */
};

struct rcfi_row {
	uint64_t start, end; /* the row holds for [start, end) */
	uint64_t fde_start, fde_end; /* the FDE's pc range */
	bool debug_frame; /* from .debug_frame rather than .eh_frame */
	int cfa_reg; /* DWARF register, or RCFI_CFA_EXPR */
	int64_t cfa_off; /* CFA = cfa_reg + cfa_off (0 for an expression) */
	enum rcfi_rule rbp_rule, ra_rule;
	int64_t rbp_off, ra_off; /* the offset, or the register for RCFI_REGISTER */
};

struct readelf_cfi;

/*
 * Runs `readelf --debug-dump=frames-interp @path` and parses its output.
 * 0 with *@out set (free it with readelf_cfi__free()), or -errno: -ENOENT
 * when readelf cannot run, -EIO when it prints nothing, -EINVAL on a line it does not
 * understand, -ENODATA when the file has no CFI.
 */
int readelf_cfi__load(const char *path, struct readelf_cfi **out);

/* The same from readelf's output text (for tests of the parser). */
int readelf_cfi__parse(const char *text, struct readelf_cfi **out);

/* NULL is a no-op. */
void readelf_cfi__free(struct readelf_cfi *t);

/* Rows in the order readelf printed them; valid until readelf_cfi__free(). */
size_t readelf_cfi__nrows(const struct readelf_cfi *t);
const struct rcfi_row *readelf_cfi__row(const struct readelf_cfi *t, size_t i);

/* The row covering @addr (.eh_frame first), or NULL. */
const struct rcfi_row *readelf_cfi__row_at(const struct readelf_cfi *t, uint64_t addr);

/*
 * The CFA rule and the saved-rbp rule at @addr: CFA = *@cfa_reg + *@cfa_off
 * (*@cfa_reg is RCFI_CFA_EXPR for an expression), rbp per *@rbp_rule and
 * *@rbp_off. Returns 0, or -ENOENT when no FDE covers @addr.
 */
int readelf_cfa_at(const struct readelf_cfi *t, uint64_t addr, int *cfa_reg, int64_t *cfa_off,
		   enum rcfi_rule *rbp_rule, int64_t *rbp_off);

#endif
