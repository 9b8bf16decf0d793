// SPDX-License-Identifier: MIT
/*
 * C++ and Rust demangling through libiberty's cplus_demangle() (the
 * demangler of binutils and GDB), behind a cache: the same few thousand
 * names come back in every drain, and demangling costs microseconds.
 */
#include "symbolizer.h"

#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

struct dm_entry {
	char *mangled; /* NULL = empty slot */
	char *demangled; /* NULL = not demanglable: show the name as it is */
};

struct sym_demangler {
	struct dm_entry *slots;
	size_t nslots; /* power of two, at least twice max_entries */
	size_t count;
	size_t max_entries;
	uint64_t lookups, hits;
	/* Past the hard bound: names demangled uncached, freed at the next trim. */
	char **overflow;
	size_t noverflow, overflow_cap;
};

static bool looks_mangled(const char *name)
{
	/* Itanium C++ ABI and legacy Rust: _Z...; Rust v0: _R... */
	return name[0] == '_' && (name[1] == 'Z' || name[1] == 'R');
}

struct sym_demangler *sym_demangler__new(size_t max_entries)
{
	struct sym_demangler *d = xcalloc(1, sizeof(*d));

	d->max_entries = max_entries ? max_entries : 8192;
	d->nslots = 16;
	while (d->nslots < 2 * d->max_entries)
		d->nslots *= 2;
	d->slots = xcalloc(d->nslots, sizeof(*d->slots));
	return d;
}

static void clear(struct sym_demangler *d)
{
	for (size_t i = 0; i < d->noverflow; i++)
		free(d->overflow[i]);
	d->noverflow = 0;
	for (size_t i = 0; i < d->nslots; i++) {
		free(d->slots[i].mangled);
		free(d->slots[i].demangled);
		d->slots[i].mangled = d->slots[i].demangled = NULL;
	}
	d->count = 0;
}

void sym_demangler__free(struct sym_demangler *d)
{
	if (!d)
		return;
	clear(d);
	free(d->overflow);
	free(d->slots);
	free(d);
}

const char *sym_demangle(struct sym_demangler *d, const char *name)
{
	size_t mask, i;

	if (!name || !looks_mangled(name))
		return name;
	d->lookups++;
	mask = d->nslots - 1;
	i = hash_bytes(name, strlen(name), 0) & mask;
	while (d->slots[i].mangled) {
		if (!strcmp(d->slots[i].mangled, name)) {
			d->hits++;
			return d->slots[i].demangled ? d->slots[i].demangled : name;
		}
		i = (i + 1) & mask;
	}
	/*
	 * Above twice the bound (a batch with very many C++ names): demangle
	 * anyway, and keep the result only until the next trim, as promised.
	 */
	if (d->count >= 2 * d->max_entries - 1) {
		char *dm = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);

		if (!dm)
			return name;
		xgrow((void **)&d->overflow, &d->overflow_cap, d->noverflow + 1,
		      sizeof(*d->overflow));
		d->overflow[d->noverflow++] = dm;
		return dm;
	}
	d->slots[i].mangled = xstrdup(name);
	d->slots[i].demangled = cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	d->count++;
	return d->slots[i].demangled ? d->slots[i].demangled : name;
}

void sym_demangler__trim(struct sym_demangler *d)
{
	if (d->count > d->max_entries || d->noverflow)
		clear(d);
}

void sym_demangler__stats(const struct sym_demangler *d, uint64_t *entries, uint64_t *lookups,
			  uint64_t *hits)
{
	*entries = d->count;
	*lookups = d->lookups;
	*hits = d->hits;
}
