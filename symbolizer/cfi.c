// SPDX-License-Identifier: MIT
/*
 * symbolizer/cfi.c — unwind rows from an ELF file's call frame information.
 *
 * Every FDE of .eh_frame (and of .debug_frame, for ranges .eh_frame does
 * not cover) is enumerated with dwarf_next_cfi(); inside each FDE,
 * dwarf_cfi_addrframe() gives the rule set that holds from an address to
 * the end of its row, so the walk visits each row once. Rows are reduced
 * to what an x86-64 unwinder needs (the CFA rule, where rbp was saved; the
 * return address is at CFA - 8 in every frame we accept) and adjacent
 * rows with the same rules are merged.
 *
 * Cost: dwarf_cfi_addrframe() runs the FDE's instructions from its start
 * each time, so an FDE of k rows costs O(k^2) instruction steps. FDEs are
 * short (a few to a few dozen rows); libc's 3,713 FDEs take about 7 ms
 * (perf stat -e task-clock on a program that only builds them).
 */
#include <elfutils/libdw.h>
#include <dwarf.h>
#include <errno.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "dso_priv.h"
#include "symbolizer.h"

/* x86-64 DWARF register numbers (System V psABI, figure 3.36). */
#define DW_X86_RBP 6
#define DW_X86_RSP 7
#define DW_X86_RA 16

struct fde_range {
	uint64_t lo, hi;
	Dwarf_CFI *cfi; /* where to look the rows up */
	int prio; /* 0 = .eh_frame (preferred), 1 = .debug_frame, 2 = synthesized PLT */
};

struct rowvec {
	struct sym_unwind_row *v;
	size_t n, cap;
};

static void push_row(struct rowvec *rv, const struct sym_unwind_row *r)
{
	/* Merge with the previous row when the rules are the same. */
	if (rv->n) {
		const struct sym_unwind_row *p = &rv->v[rv->n - 1];

		if (p->rule == r->rule && p->cfa_off == r->cfa_off && p->fp_off == r->fp_off &&
		    p->plt_cut == r->plt_cut)
			return;
		if (p->pc == r->pc) { /* an empty row: the newer one wins */
			rv->v[rv->n - 1] = *r;
			return;
		}
	}
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? rv->cap * 2 : 256;
		rv->v = xrealloc(rv->v, rv->cap * sizeof(*rv->v));
	}
	rv->v[rv->n++] = *r;
}

/* ---- pointer encodings (LSB 5.0, "DWARF Exception Header Encoding") ------------------------ */

static int read_uleb(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	while (*p < end) {
		uint8_t b = *(*p)++;

		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL;
}

static int read_sleb(const uint8_t **p, const uint8_t *end, int64_t *out)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	while (*p < end) {
		uint8_t b = *(*p)++;

		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				v |= ~0ULL << shift;
			*out = (int64_t)v;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Decodes one pointer of encoding @enc at *@p (which lives at ELF virtual
 * address @field_vaddr, for DW_EH_PE_pcrel). Only the applications FDEs
 * use (absolute, pc-relative) are accepted.
 */
static int read_encoded(const uint8_t **p, const uint8_t *end, uint8_t enc, uint64_t field_vaddr,
			uint64_t *out)
{
	uint64_t v = 0;
	int64_t s;
	size_t size = 0;

	if (enc == DW_EH_PE_omit)
		return -EINVAL;
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		size = 8;
		break;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2:
		size = 2;
		break;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4:
		size = 4;
		break;
	case DW_EH_PE_uleb128:
		if (read_uleb(p, end, &v))
			return -EINVAL;
		break;
	case DW_EH_PE_sleb128:
		if (read_sleb(p, end, &s))
			return -EINVAL;
		v = (uint64_t)s;
		break;
	default:
		return -EINVAL;
	}
	if (size) {
		if ((size_t)(end - *p) < size)
			return -EINVAL;
		if (size == 2) {
			uint16_t x;

			memcpy(&x, *p, 2);
			v = (enc & 0x08) ? (uint64_t)(int64_t)(int16_t)x : x;
		} else if (size == 4) {
			uint32_t x;

			memcpy(&x, *p, 4);
			v = (enc & 0x08) ? (uint64_t)(int64_t)(int32_t)x : x;
		} else {
			memcpy(&v, *p, 8);
		}
		*p += size;
	}
	switch (enc & 0x70) {
	case DW_EH_PE_absptr:
		break;
	case DW_EH_PE_pcrel:
		v += field_vaddr;
		break;
	default:
		return -EINVAL; /* textrel/datarel/funcrel: not used for FDE addresses */
	}
	*out = v;
	return 0;
}

/* The FDE pointer encoding a CIE announces with 'R' (absptr without 'z'). */
static uint8_t cie_fde_encoding(const Dwarf_CIE *cie)
{
	const char *aug = cie->augmentation;
	const uint8_t *p = cie->augmentation_data;
	const uint8_t *end = p ? p + cie->augmentation_data_size : NULL;
	uint64_t ignored;

	if (!aug || aug[0] != 'z' || !p)
		return DW_EH_PE_absptr;
	for (aug++; *aug; aug++) {
		switch (*aug) {
		case 'R':
			return p < end ? *p : DW_EH_PE_absptr;
		case 'L':
			p++;
			break;
		case 'P': {
			uint8_t penc;

			if (p >= end)
				return DW_EH_PE_absptr;
			penc = *p++;
			/* The personality pointer's value does not matter, only its size. */
			if (read_encoded(&p, end, penc & 0x0f, 0, &ignored))
				return DW_EH_PE_absptr;
			break;
		}
		case 'S':
		case 'B':
		case 'G':
			break;
		default:
			return DW_EH_PE_absptr;
		}
	}
	return DW_EH_PE_absptr;
}

struct cie_enc {
	Dwarf_Off off;
	uint8_t enc;
};

/*
 * Appends the [lo, hi) of every FDE in @data (a CFI section at virtual
 * address @sh_addr) to @out.
 */
static void collect_fdes(Elf *elf, Elf_Data *data, bool eh, uint64_t sh_addr, Dwarf_CFI *cfi,
			 int prio, struct fde_range **out, size_t *n, size_t *cap)
{
	const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
	struct cie_enc *cies = NULL;
	size_t ncies = 0, ciecap = 0;
	Dwarf_Off off = 0, next;
	Dwarf_CFI_Entry e;

	if (!ident)
		return;
	while (dwarf_next_cfi(ident, data, eh, off, &next, &e) == 0) {
		if (dwarf_cfi_cie_p(&e)) {
			if (ncies == ciecap) {
				ciecap = ciecap ? ciecap * 2 : 16;
				cies = xrealloc(cies, ciecap * sizeof(*cies));
			}
			cies[ncies++] = (struct cie_enc){off, eh ? cie_fde_encoding(&e.cie) : 0};
		} else {
			const uint8_t *p = e.fde.start, *end = e.fde.end;
			uint8_t enc = DW_EH_PE_absptr;
			uint64_t lo, len;
			size_t i;

			for (i = 0; i < ncies && cies[i].off != e.fde.CIE_pointer; i++)
				;
			if (i < ncies) {
				enc = cies[i].enc;
			} else {
				/* A CIE after its FDE (legal, rare): ask libdw for it. */
				Dwarf_CFI_Entry ce;
				Dwarf_Off cn;

				if (dwarf_next_cfi(ident, data, eh, e.fde.CIE_pointer, &cn, &ce) ||
				    !dwarf_cfi_cie_p(&ce))
					goto next;
				enc = eh ? cie_fde_encoding(&ce.cie) : DW_EH_PE_absptr;
			}
			if (read_encoded(&p, end, enc,
					 sh_addr + (uint64_t)(p - (const uint8_t *)data->d_buf),
					 &lo) ||
			    read_encoded(&p, end, enc & 0x0f, 0, &len))
				goto next;
			if (len == 0 || lo + len < lo)
				goto next;
			if (*n == *cap) {
				*cap = *cap ? *cap * 2 : 256;
				*out = xrealloc(*out, *cap * sizeof(**out));
			}
			(*out)[(*n)++] = (struct fde_range){lo, lo + len, cfi, prio};
		}
next:
		if (next <= off)
			break;
		off = next;
	}
	free(cies);
}

/* Reads an "offset(N)" register rule: the register is saved at CFA + N. */
static bool saved_at_cfa(const Dwarf_Op *ops, size_t nops, int64_t *off)
{
	if (nops == 0 || ops[0].atom != DW_OP_call_frame_cfa)
		return false;
	if (nops == 1) {
		*off = 0;
		return true;
	}
	if (nops == 2 && ops[1].atom == DW_OP_plus_uconst) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	if (nops == 3 && ops[1].atom == DW_OP_consts && ops[2].atom == DW_OP_plus) {
		*off = (int64_t)ops[1].number;
		return true;
	}
	return false;
}

/*
 * The .plt entry's CFA: rsp + 8 while the entry pushes nothing, rsp + 16
 * after its push (binutils, bfd/elf64-x86-64.c, elf_x86_64_eh_frame_plt):
 *   DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_litN;
 *   DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
 * where N (10 or 11) is where the push ends inside a 16-byte entry.
 */
static bool plt_expression(const Dwarf_Op *ops, size_t nops, uint8_t *cut)
{
	if (nops != 9)
		return false;
	if (ops[0].atom != DW_OP_breg7 || ops[0].number != 8 || ops[1].atom != DW_OP_breg16 ||
	    ops[1].number != 0 || ops[2].atom != DW_OP_lit15 || ops[3].atom != DW_OP_and ||
	    ops[4].atom < DW_OP_lit0 || ops[4].atom > DW_OP_lit15 || ops[5].atom != DW_OP_ge ||
	    ops[6].atom != DW_OP_lit3 || ops[7].atom != DW_OP_shl || ops[8].atom != DW_OP_plus)
		return false;
	*cut = ops[4].atom - DW_OP_lit0;
	return true;
}

/* CFA = register + offset, in any of the forms libdw returns. */
static bool reg_plus_off(const Dwarf_Op *op, int *reg, int64_t *off)
{
	if (op->atom == DW_OP_bregx) {
		*reg = (int)op->number;
		*off = (int64_t)op->number2;
		return true;
	}
	if (op->atom >= DW_OP_breg0 && op->atom <= DW_OP_breg31) {
		*reg = op->atom - DW_OP_breg0;
		*off = (int64_t)op->number;
		return true;
	}
	return false;
}

/* Reduces libdw's rule set for one row to a sym_unwind_row. */
static void frame_to_row(Dwarf_Frame *f, bool signal, struct sym_unwind_row *r)
{
	Dwarf_Op mem[3], *ops;
	size_t nops;
	int64_t off;
	int reg;

	r->rule = SYM_CFA_UNSUPPORTED;
	r->cfa_off = 0;
	r->fp_off = 0;
	r->plt_cut = 0;
	if (signal) {
		/* The rt_sigreturn trampoline: its "caller" is the interrupted state. */
		r->rule = SYM_CFA_SIGNAL;
		return;
	}
	if (dwarf_frame_register(f, DW_X86_RA, mem, &ops, &nops) != 0)
		return;
	if (nops == 0 && ops == mem) {
		r->rule = SYM_CFA_END; /* the return address is undefined: outermost frame */
		return;
	}
	if (!saved_at_cfa(ops, nops, &off) || off != -8)
		return; /* the return address is somewhere else: not unwound */

	if (dwarf_frame_cfa(f, &ops, &nops) != 0 || nops == 0)
		return;
	if (nops == 1 && reg_plus_off(&ops[0], &reg, &off) &&
	    (reg == DW_X86_RSP || reg == DW_X86_RBP)) {
		r->rule = reg == DW_X86_RSP ? SYM_CFA_SP : SYM_CFA_FP;
		r->cfa_off = off;
	} else if (nops == 2 && reg_plus_off(&ops[0], &reg, &off) && reg == DW_X86_RBP &&
		   ops[1].atom == DW_OP_deref) {
		/* Stack realignment (main with -mavx, ...): the CFA was saved below rbp. */
		r->rule = SYM_CFA_FP_DEREF;
		r->cfa_off = off;
	} else if (plt_expression(ops, nops, &r->plt_cut)) {
		r->rule = SYM_CFA_PLT;
		r->cfa_off = 8;
	} else {
		return; /* another register (r10 during realignment) or expression */
	}

	if (dwarf_frame_register(f, DW_X86_RBP, mem, &ops, &nops) == 0 && nops &&
	    saved_at_cfa(ops, nops, &off)) {
		if (off == 0 || off < INT16_MIN || off > INT16_MAX) {
			r->rule = SYM_CFA_UNSUPPORTED;
			return;
		}
		r->fp_off = (int16_t)off;
	}
	/* Anything else for rbp (same value, undefined, val_offset): left as it is. */
}

static int cmp_range(const void *a, const void *b)
{
	const struct fde_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->prio - y->prio;
}

/* Adds the rows of one FDE range, [lo, hi). */
static void fde_rows(const struct fde_range *fr, uint64_t lo, struct rowvec *rv,
		     struct sym_unwind_stats *st)
{
	uint64_t addr = lo;

	if (!fr->cfi) { /* a .plt section without CFI: rsp + 8 everywhere */
		struct sym_unwind_row r = {.pc = lo, .rule = SYM_CFA_SP, .cfa_off = 8};

		push_row(rv, &r);
		st->synthesized++;
		return;
	}
	while (addr < fr->hi) {
		Dwarf_Frame *f = NULL;
		struct sym_unwind_row r = {.pc = addr};
		Dwarf_Addr start, end;
		bool signal = false;

		if (dwarf_cfi_addrframe(fr->cfi, addr, &f) != 0) {
			r.rule = SYM_CFA_UNSUPPORTED;
			push_row(rv, &r);
			st->bad_fdes++;
			return;
		}
		if (dwarf_frame_info(f, &start, &end, &signal) < 0 || end <= addr) {
			free(f);
			r.rule = SYM_CFA_UNSUPPORTED;
			push_row(rv, &r);
			st->bad_fdes++;
			return;
		}
		frame_to_row(f, signal, &r);
		free(f);
		if (r.rule == SYM_CFA_UNSUPPORTED)
			st->unsupported++;
		push_row(rv, &r);
		addr = end;
	}
}

static Elf_Scn *find_section(Elf *elf, const char *want, GElf_Shdr *sh)
{
	size_t shstrndx;
	Elf_Scn *scn = NULL;

	if (elf_getshdrstrndx(elf, &shstrndx))
		return NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh->sh_name);
		if (name && strcmp(name, want) == 0)
			return sh->sh_type == SHT_NOBITS ? NULL : scn;
	}
	return NULL;
}

static void add_range(struct fde_range **v, size_t *n, size_t *cap, struct fde_range r)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 256;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = r;
}

int sym_unwind_rows_from_elf(Elf *elf, struct sym_unwind_row **rows, size_t *nrows,
			     struct sym_unwind_stats *st)
{
	static const char *const plts[] = {".plt", ".plt.sec", ".plt.got"};
	struct sym_unwind_stats local = {0};
	struct fde_range *fr = NULL;
	size_t nfr = 0, capfr = 0;
	struct rowvec rv = {0};
	Dwarf_CFI *eh_cfi = NULL, *dbg_cfi = NULL;
	Dwarf *dw = NULL;
	GElf_Ehdr eh;
	GElf_Shdr sh;
	Elf_Scn *scn;
	uint64_t covered = 0;

	*rows = NULL;
	*nrows = 0;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (!elf || !gelf_getehdr(elf, &eh))
		return -ENOEXEC;
	if (eh.e_machine != EM_X86_64 || eh.e_ident[EI_CLASS] != ELFCLASS64)
		return -EOPNOTSUPP;

	scn = find_section(elf, ".eh_frame", &sh);
	if (scn && (eh_cfi = dwarf_getcfi_elf(elf))) {
		Elf_Data *d = elf_getdata(scn, NULL);

		if (d && d->d_buf)
			collect_fdes(elf, d, true, sh.sh_addr, eh_cfi, 0, &fr, &nfr, &capfr);
	}
	scn = find_section(elf, ".debug_frame", &sh);
	if (scn && (dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL)) &&
	    (dbg_cfi = dwarf_getcfi(dw))) {
		Elf_Data *d = elf_getdata(scn, NULL);

		if (d && d->d_buf)
			collect_fdes(elf, d, false, 0, dbg_cfi, 1, &fr, &nfr, &capfr);
	}
	st->fdes = nfr;
	/* PLT sections that no FDE covers (.plt.sec, .plt.got usually): jumps only. */
	for (size_t i = 0; i < ARRAY_SIZE(plts); i++) {
		if (find_section(elf, plts[i], &sh) && sh.sh_size && (sh.sh_flags & SHF_EXECINSTR))
			add_range(&fr, &nfr, &capfr,
				  (struct fde_range){sh.sh_addr, sh.sh_addr + sh.sh_size, NULL, 2});
	}
	if (nfr == 0) {
		if (eh_cfi)
			dwarf_cfi_end(eh_cfi); /* dwarf_getcfi_elf()'s is ours; dw owns dbg_cfi */
		if (dw)
			dwarf_end(dw);
		return -ENODATA;
	}
	qsort(fr, nfr, sizeof(*fr), cmp_range);
	for (size_t i = 0; i < nfr; i++) {
		uint64_t lo = fr[i].lo > covered ? fr[i].lo : covered;
		struct sym_unwind_row gap = {.rule = SYM_CFA_NONE};

		if (lo < fr[i].hi) { /* else overlapped by a preferred range */
			fde_rows(&fr[i], lo, &rv, st);
			covered = fr[i].hi;
		}
		/* A gap up to the next range gets a row saying "no CFI here". */
		gap.pc = covered;
		if (i + 1 == nfr || fr[i + 1].lo > covered)
			push_row(&rv, &gap);
	}
	free(fr);
	if (eh_cfi)
		dwarf_cfi_end(eh_cfi);
	if (dw)
		dwarf_end(dw);
	*rows = rv.v;
	*nrows = rv.n;
	st->rows = rv.n;
	return 0;
}

int sym_dso__unwind_rows(struct sym_dso *d, struct sym_unwind_row **rows, size_t *nrows,
			 struct sym_unwind_stats *st)
{
	Elf *elf;
	int err;

	*rows = NULL;
	*nrows = 0;
	if (!dso__elf_ok(d) || dso__fd(d) < 0)
		return -ENOEXEC;
	elf = elf_begin(dso__fd(d), ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	err = sym_unwind_rows_from_elf(elf, rows, nrows, st);
	elf_end(elf);
	return err;
}

const struct sym_unwind_row *sym_unwind_rows__find(const struct sym_unwind_row *rows, size_t n,
						   uint64_t vaddr)
{
	size_t lo = 0, hi = n;

	/* The last row whose pc <= vaddr. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].pc <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &rows[lo - 1] : NULL;
}
