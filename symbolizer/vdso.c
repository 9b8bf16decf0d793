// SPDX-License-Identifier: MIT
/*
 * symbolizer/vdso.c — symbols of the vDSO, read from our own process.
 *
 * The kernel maps one prebuilt image per ABI into every process
 * (arch/x86/entry/vdso/vdso2c.h: the whole stripped .so file, section
 * headers included, is the mapping's content from offset 0), so the image at
 * getauxval(AT_SYSINFO_EHDR) describes every native process's [vdso]. It has
 * no .symtab, only .dynsym, with sizes: about 10 functions.
 */
#include "symbolizer.h"

#include <elf.h>
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "../common/util.h"

/* The x86-64 image is 8 KiB; anything far larger is not a vDSO. */
#define VDSO_MAX_SIZE (1u << 20)

struct vdso_sym {
	uint64_t start, size; /* ELF virtual address; size 0: up to the next symbol */
	const char *name; /* into the arena */
	int rank; /* lower is better among aliases: global, weak, local */
};

struct sym_vdso {
	uint64_t size;
	uint64_t load_off, load_vaddr; /* the PT_LOAD: mapping offset -> vaddr */
	struct vdso_sym *syms; /* sorted by start, one per address */
	size_t n;
	char *arena;
	/* unwind rows, pc as an offset in the mapping (see sym_vdso__unwind_rows) */
	struct sym_unwind_row *rows;
	size_t nrows;
};

/* The image's extent from its own headers: program headers, segments, section headers. */
static uint64_t image_size(const unsigned char *base)
{
	const Elf64_Ehdr *eh = (const void *)base;
	const Elf64_Phdr *ph;
	uint64_t end;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > VDSO_MAX_SIZE ||
	    eh->e_phnum > 64)
		return 0;
	end = eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(*ph);
	ph = (const void *)(base + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > end)
			end = ph[i].p_offset + ph[i].p_filesz;
	if (eh->e_shoff && eh->e_shoff < VDSO_MAX_SIZE && eh->e_shentsize == sizeof(Elf64_Shdr))
		if (eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize > end)
			end = eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize;
	return end <= VDSO_MAX_SIZE ? end : 0;
}

static int bind_rank(unsigned char bind)
{
	return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
}

static int cmp_sym(const void *a, const void *b)
{
	const struct vdso_sym *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/*
	 * Aliases: global over weak, which names "__vdso_clock_gettime" (as
	 * perf does) rather than its weak alias "clock_gettime"; then the name,
	 * so that the choice does not depend on the table's order.
	 */
	if (x->rank != y->rank)
		return x->rank - y->rank;
	return strcmp(x->name, y->name);
}

/* Reads .dynsym's defined functions into @v. 0 or -ENOEXEC. */
static int read_syms(struct sym_vdso *v, Elf *elf)
{
	struct strbuf names = STRBUF_INIT;
	Elf_Scn *scn = NULL;
	size_t cap = 0, ncap = 0, i, j;
	uint32_t *noff = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t count;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		count = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < count; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
			    s.st_shndx == SHN_UNDEF || !s.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!name || !*name)
				continue;
			xgrow((void **)&v->syms, &cap, v->n + 1, sizeof(*v->syms));
			xgrow((void **)&noff, &ncap, v->n + 1, sizeof(*noff));
			v->syms[v->n].start = s.st_value;
			v->syms[v->n].size = s.st_size;
			v->syms[v->n].rank = bind_rank(GELF_ST_BIND(s.st_info));
			noff[v->n] = (uint32_t)names.len;
			strbuf_add(&names, name, strlen(name) + 1);
			v->n++;
		}
	}
	if (!v->n) {
		free(noff);
		strbuf_release(&names);
		return -ENOEXEC;
	}
	v->arena = strbuf_detach(&names, NULL);
	for (i = 0; i < v->n; i++)
		v->syms[i].name = v->arena + noff[i];
	free(noff);
	qsort(v->syms, v->n, sizeof(*v->syms), cmp_sym);
	for (i = 0, j = 0; i < v->n; i++)
		if (!j || v->syms[i].start != v->syms[j - 1].start)
			v->syms[j++] = v->syms[i];
	v->n = j;
	return 0;
}

struct sym_vdso *sym_vdso__load_self(void)
{
	const unsigned char *base = (const void *)getauxval(AT_SYSINFO_EHDR);
	struct sym_vdso *v;
	char *copy = NULL;
	Elf *elf = NULL;
	GElf_Ehdr eh;
	size_t phnum;
	int err = -ENOEXEC;

	if (!base) {
		errno = ENOENT;
		return NULL;
	}
	v = xcalloc(1, sizeof(*v));
	v->size = image_size(base);
	if (!v->size || elf_version(EV_CURRENT) == EV_NONE)
		goto fail;
	/* libelf gets a private copy: the mapping is read-only and we keep nothing in it. */
	copy = xmalloc(v->size);
	memcpy(copy, base, v->size);
	elf = elf_memory(copy, v->size);
	if (!elf || !gelf_getehdr(elf, &eh) || elf_getphdrnum(elf, &phnum))
		goto fail;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD) {
			v->load_off = ph.p_offset;
			v->load_vaddr = ph.p_vaddr;
			break;
		}
	}
	err = read_syms(v, elf);
	if (err)
		goto fail;
	/* No CFI is not fatal: the vDSO is then unwound with frame pointers. */
	if (sym_unwind_rows_from_elf(elf, &v->rows, &v->nrows, NULL) == 0) {
		for (size_t i = 0; i < v->nrows; i++)
			v->rows[i].pc = v->rows[i].pc - v->load_vaddr + v->load_off;
	}
	elf_end(elf);
	free(copy);
	return v;
fail:
	pr_warn("vdso: cannot read its symbols: %s", strerror(-err));
	elf_end(elf);
	free(copy);
	sym_vdso__free(v);
	errno = -err;
	return NULL;
}

void sym_vdso__free(struct sym_vdso *v)
{
	if (!v)
		return;
	free(v->syms);
	free(v->arena);
	free(v->rows);
	free(v);
}

uint64_t sym_vdso__size(const struct sym_vdso *v)
{
	return v ? v->size : 0;
}

const char *sym_vdso__resolve(const struct sym_vdso *v, uint64_t offset_in_mapping,
			      uint64_t *sym_off)
{
	uint64_t vaddr, end;
	size_t lo = 0, hi;
	const struct vdso_sym *s;

	if (!v || offset_in_mapping < v->load_off || offset_in_mapping >= v->size)
		return NULL;
	vaddr = v->load_vaddr + (offset_in_mapping - v->load_off);
	hi = v->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v->syms[mid].start <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return NULL;
	s = &v->syms[lo - 1];
	/* A zero-size symbol reaches the next one, as perf does for such symbols. */
	end = s->size ? s->start + s->size : lo < v->n ? v->syms[lo].start : s->start + 1;
	if (vaddr >= end)
		return NULL;
	if (sym_off)
		*sym_off = vaddr - s->start;
	return s->name;
}

const struct sym_unwind_row *sym_vdso__unwind_rows(const struct sym_vdso *v, size_t *n)
{
	*n = v ? v->nrows : 0;
	return v ? v->rows : NULL;
}
