/* SPDX-License-Identifier: MIT */
/*
 * symbolizer/dso_priv.h — what dso.c (ELF files and their cache) and dwarf.c
 * (DWARF lines and inline chains) share. Not part of the public API.
 *
 * dso.c owns struct sym_dso and struct sym_dsos; dwarf.c owns the libdw
 * session of a dso (struct dso_dwarf), which the dso keeps in a slot and
 * frees through dso_dwarf__free() when it is destroyed.
 */
#ifndef BPFPROF_DSO_PRIV_H
#define BPFPROF_DSO_PRIV_H

#include <libelf.h>

#include "symbolizer.h"

struct dso_dwarf;

/* The dso's descriptor (owned by the dso, open for its life); -1 when none. */
int dso__fd(const struct sym_dso *d);
/* False when the file's ELF header or program headers could not be read. */
bool dso__elf_ok(const struct sym_dso *d);
/* Where the dso keeps its DWARF session: NULL until dwarf.c first loads it. */
struct dso_dwarf **dso__dwarf_slot(struct sym_dso *d);
/*
 * The debug roots of the cache that owns @d, the default ("/usr/lib/debug")
 * when none were set or the cache is gone. The strings live until the next
 * sym_dsos__set_debug_roots().
 */
const char *const *dso__debug_roots(const struct sym_dso *d, size_t *n);
/* The owning cache's statistics; NULL once the cache was freed under @d. */
struct sym_stats *dso__stats(struct sym_dso *d);

/*
 * Takes @bytes of the cache's DWARF budget (sym_dsos__set_dwarf_budget) for
 * a libdw session of @d; false (counted in dwarf_over_budget) when they do
 * not fit. dso_dwarf__free() gives them back through the stats.
 */
bool dso__dwarf_reserve(struct sym_dso *d, uint64_t bytes);
/* Gives back @bytes reserved for @d's session (a session that failed to open). */
void dso__dwarf_release(struct sym_dso *d, uint64_t bytes);
/* How many times budget bytes were given back: a refused session may try again. */
uint64_t dso__dwarf_releases(const struct sym_dso *d);
/* Accounts @bytes given back to @st (the owning cache's stats). */
void dso_dwarf__released(struct sym_stats *st, uint64_t bytes);

/*
 * The separate debug file of @d (found as for DWARF, but without starting a
 * libdw session) and its size; NULL when @d has its own DWARF or none was
 * found. Owned by the dso's DWARF state: valid as long as @d.
 */
Elf *dso_dwarf__debug_elf(struct sym_dso *d, uint64_t *size);

/* The budget bytes a DWARF session holds (its estimate); 0 for NULL or none. */
uint64_t dso_dwarf__bytes(const struct dso_dwarf *dw);

/* True when @dw exists and sym_dso__frames() last used it before @before_ns (CLOCK_MONOTONIC). */
bool dso_dwarf__unused_since(const struct dso_dwarf *dw, uint64_t before_ns);

/* Frees a DWARF session and uncounts it from @st (may be NULL). NULL @dw is a no-op. */
void dso_dwarf__free(struct dso_dwarf *dw, struct sym_stats *st);

#endif
