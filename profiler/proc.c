// SPDX-License-Identifier: MIT
#include "proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "profile.h"

/* A vma array replaced by a re-read, freed at the next gc (see read_maps). */
struct retired_vmas {
	struct prof_vma *vmas;
	uint32_t n;
	struct retired_vmas *next;
};

struct prof_procs {
	struct sym_dsos *dsos;
	struct retired_vmas *retired;
	struct prof_aspace **buckets;
	size_t nbuckets;
	size_t count;
	uint64_t drain; /* drain number, see prof_aspace.refreshed */
	struct prof_procs_stats stats;
};

/* By pid alone: every address space of a pid is in one chain (see kill_pid). */
static size_t bucket_of(const struct prof_procs *t, uint32_t pid, uint32_t id)
{
	(void)id;
	return hash_u64(pid, 0x9e3779b9) & (t->nbuckets - 1);
}

struct prof_procs *prof_procs__new(struct sym_dsos *dsos)
{
	struct prof_procs *t = xcalloc(1, sizeof(*t));

	t->dsos = dsos;
	t->nbuckets = 1024;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	return t;
}

static void free_vmas(struct prof_vma *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		sym_dso__put(v[i].dso);
		free(v[i].path);
	}
	free(v);
}

static void aspace_free(struct prof_aspace *as)
{
	sym_perfmap__free(as->perfmap);
	free_vmas(as->vmas, as->nvmas);
	free(as);
}

static void free_retired(struct prof_procs *t)
{
	while (t->retired) {
		struct retired_vmas *r = t->retired;

		t->retired = r->next;
		free_vmas(r->vmas, r->n);
		free(r);
	}
}

void prof_procs__free(struct prof_procs *t)
{
	if (!t)
		return;
	free_retired(t);
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct prof_aspace *as = t->buckets[b], *next;

		for (; as; as = next) {
			next = as->next;
			aspace_free(as);
		}
	}
	free(t->buckets);
	free(t);
}

static void grow(struct prof_procs *t)
{
	size_t nb = t->nbuckets * 2;
	struct prof_aspace **nbk = xcalloc(nb, sizeof(*nbk));
	struct prof_aspace **old = t->buckets;
	size_t ob = t->nbuckets;

	t->buckets = nbk;
	t->nbuckets = nb;
	for (size_t b = 0; b < ob; b++) {
		struct prof_aspace *as = old[b], *next;

		for (; as; as = next) {
			size_t i = bucket_of(t, as->pid, as->id);

			next = as->next;
			as->next = nbk[i];
			nbk[i] = as;
		}
	}
	free(old);
}

static int cmp_vma(const void *a, const void *b)
{
	const struct prof_vma *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* (Re-)reads the executable mappings of @as from /proc. */
static int read_maps(struct prof_procs *t, struct prof_aspace *as)
{
	struct sym_map_entry *m = NULL;
	struct prof_vma *v;
	size_t n = 0;
	uint32_t nv = 0;
	int err;

	t->stats.maps_reads++;
	err = sym_procmaps__read(as->pid, &m, &n);
	if (err) {
		t->stats.maps_errors++;
		as->read_err = err;
		return err;
	}
	v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct prof_vma *x;

		if (!(m[i].perms & SYM_MAP_X))
			continue;
		x = &v[nv++];
		x->start = m[i].start;
		x->end = m[i].end;
		x->pgoff = m[i].pgoff;
		x->deleted = m[i].deleted;
		x->path = xstrdup(m[i].path);
		if (m[i].path[0] == '/') {
			x->kind = PROF_VMA_FILE;
			/* Reuse the open dso of the previous read of this mapping. */
			for (uint32_t j = 0; j < as->nvmas; j++) {
				struct prof_vma *o = &as->vmas[j];

				if (o->dso && o->start == x->start && o->end == x->end &&
				    o->pgoff == x->pgoff && strcmp(o->path, x->path) == 0) {
					x->dso = o->dso;
					sym_dso__get(x->dso);
					break;
				}
			}
			if (!x->dso)
				x->dso = sym_dsos__get_mapped(t->dsos, as->pid, &m[i]);
		} else if (strcmp(m[i].path, "[vdso]") == 0) {
			x->kind = PROF_VMA_VDSO;
		} else {
			x->kind = PROF_VMA_ANON;
		}
	}
	sym_procmaps__free(m, n);
	qsort(v, nv, sizeof(*v), cmp_vma);
	/*
	 * A re-read can happen in the middle of symbolizing a sample, whose
	 * earlier frames still point at the old paths and symbol names: the
	 * old array lives until the drain is over.
	 */
	if (as->vmas) {
		struct retired_vmas *r = xmalloc(sizeof(*r));

		*r = (struct retired_vmas){as->vmas, as->nvmas, t->retired};
		t->retired = r;
	}
	as->vmas = v;
	as->nvmas = nv;
	as->read_err = 0;
	as->maps_gen++;
	return 0;
}

/* Whether @s[0..n) is exactly 64 lowercase hex digits. */
static bool is_id64(const char *s, size_t n)
{
	if (n != PROF_CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/*
 * The id in one path component, or NULL: "<id>", "<prefix>-<id>" and either
 * with ".scope". systemd's names ("docker-<id>.scope") put the runtime first;
 * cgroupfs drivers use the bare id as the directory name.
 */
static const char *component_id(const char *c, size_t n)
{
	const char *dash;

	if (n > 6 && !memcmp(c + n - 6, ".scope", 6))
		n -= 6;
	if (is_id64(c, n))
		return c;
	dash = memrchr(c, '-', n);
	if (!dash || !is_id64(dash + 1, n - (size_t)(dash + 1 - c)))
		return NULL;
	/* The monitors run beside the container, not in it. */
	if ((dash - c == 11 && !memcmp(c, "crio-conmon", 11)) ||
	    (dash - c == 13 && !memcmp(c, "libpod-conmon", 13)))
		return NULL;
	return dash + 1;
}

int prof_cgroup_container_id(const char *text, char out[65])
{
	const char *found = NULL;

	/* Lines are "hierarchy-id:controllers:path"; every hierarchy is looked at. */
	for (const char *line = text; line && *line;) {
		const char *eol = strchr(line, '\n'), *path, *c;
		const char *end = eol ? eol : line + strlen(line);
		const char *line_found = NULL;

		path = memchr(line, ':', (size_t)(end - line));
		path = path ? memchr(path + 1, ':', (size_t)(end - path - 1)) : NULL;
		for (c = path ? path + 1 : end; c < end;) {
			const char *slash = memchr(c, '/', (size_t)(end - c));
			const char *cend = slash ? slash : end;
			const char *id = component_id(c, (size_t)(cend - c));

			if (id)
				line_found =
					id; /* innermost wins: nested scopes of one container */
			c = cend + 1;
		}
		if (line_found && !found)
			found = line_found;
		line = eol ? eol + 1 : NULL;
	}
	if (!found)
		return -ENOENT;
	memcpy(out, found, PROF_CONTAINER_ID_LEN);
	out[PROF_CONTAINER_ID_LEN] = '\0';
	return 0;
}

/* Reads the container id of @as->pid; a process already gone or in none gets "". */
static void read_container(struct prof_aspace *as)
{
	struct strbuf sb = STRBUF_INIT;
	char path[32];

	as->container[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/cgroup", as->pid);
	/* A few hundred bytes; cgroup v1 with every controller is still under 4 KiB. */
	if (read_file(path, &sb, 64 * 1024) == 0 && sb.buf &&
	    prof_cgroup_container_id(sb.buf, as->container))
		as->container[0] = '\0';
	strbuf_release(&sb);
}

static struct prof_aspace *lookup(struct prof_procs *t, uint32_t pid, uint32_t id)
{
	struct prof_aspace *as = t->buckets[bucket_of(t, pid, id)];

	while (as && !(as->pid == pid && as->id == id))
		as = as->next;
	return as;
}

static struct prof_aspace *insert(struct prof_procs *t, uint32_t pid, uint32_t id)
{
	struct prof_aspace *as = xcalloc(1, sizeof(*as));
	size_t b;

	if (t->count + 1 > t->nbuckets)
		grow(t);
	as->pid = pid;
	as->id = id;
	as->refreshed = UINT64_MAX; /* no drain re-read yet */
	b = bucket_of(t, pid, id);
	as->next = t->buckets[b];
	t->buckets[b] = as;
	t->count++;
	read_container(as);
	read_maps(t, as);
	return as;
}

/* Marks every live address space of @pid but @keep_id as dead at @now. */
static void kill_pid(struct prof_procs *t, uint32_t pid, uint32_t keep_id, uint64_t now)
{
	/* One chain: buckets are chosen by pid. */
	for (struct prof_aspace *as = t->buckets[bucket_of(t, pid, 0)]; as; as = as->next)
		if (as->pid == pid && as->id != keep_id && !as->dead_ns)
			as->dead_ns = now;
}

void prof_procs__event(struct prof_procs *t, const struct prof_event *e)
{
	uint64_t now = now_mono_ns();
	struct prof_aspace *as;

	switch (e->type) {
	case PROF_EV_NEW_PID:
	case PROF_EV_EXEC:
		kill_pid(t, e->pid, e->aspace, now);
		as = lookup(t, e->pid, e->aspace);
		if (!as)
			insert(t, e->pid, e->aspace);
		break;
	case PROF_EV_RESCAN:
		/* Libraries ld.so mapped since the exec (or since the last rescan). */
		as = lookup(t, e->pid, e->aspace);
		if (!as)
			insert(t, e->pid, e->aspace);
		else if (!as->dead_ns)
			read_maps(t, as);
		t->stats.rescans++;
		break;
	case PROF_EV_EXIT:
		kill_pid(t, e->pid, 0, now);
		break;
	default:
		break;
	}
}

const struct prof_aspace *prof_procs__find(const struct prof_procs *t, uint32_t pid, uint32_t id)
{
	return lookup((struct prof_procs *)t, pid, id);
}

struct prof_aspace *prof_procs__get(struct prof_procs *t, uint32_t pid, uint32_t id)
{
	struct prof_aspace *as = lookup(t, pid, id);

	return as ? as : insert(t, pid, id);
}

static const struct prof_vma *find(const struct prof_aspace *as, uint64_t addr)
{
	uint32_t lo = 0, hi = as->nvmas;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		const struct prof_vma *v = &as->vmas[mid];

		if (addr < v->start)
			hi = mid;
		else if (addr >= v->end)
			lo = mid + 1;
		else
			return v;
	}
	return NULL;
}

const struct prof_vma *prof_procs__find_vma(struct prof_procs *t, struct prof_aspace *as,
					    uint64_t addr)
{
	const struct prof_vma *v = find(as, addr);

	if (v || as->dead_ns || as->refreshed == t->drain)
		return v;
	/* Set before reading, so that a process already gone costs one try per drain. */
	as->refreshed = t->drain;
	t->stats.refreshes++;
	if (read_maps(t, as))
		return NULL;
	return find(as, addr);
}

/* How often (in drains) live address spaces are checked against /proc. */
#define LIVENESS_EVERY 16

void prof_procs__gc(struct prof_procs *t, uint64_t flip_ns)
{
	free_retired(t);
	/*
	 * An exit event can be lost (ring buffer full, pids map entry evicted):
	 * now and then, check that the processes we hold still exist, so the
	 * table cannot grow without bound.
	 */
	if (t->drain % LIVENESS_EVERY == LIVENESS_EVERY - 1) {
		char path[32];

		for (size_t b = 0; b < t->nbuckets; b++)
			for (struct prof_aspace *as = t->buckets[b]; as; as = as->next) {
				snprintf(path, sizeof(path), "/proc/%u", as->pid);
				if (!as->dead_ns && access(path, F_OK) && errno == ENOENT)
					as->dead_ns = flip_ns - 1;
			}
	}
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct prof_aspace **pp = &t->buckets[b];

		while (*pp) {
			struct prof_aspace *as = *pp;

			if (as->dead_ns && as->dead_ns < flip_ns) {
				*pp = as->next;
				aspace_free(as);
				t->count--;
			} else {
				pp = &as->next;
			}
		}
	}
	t->drain++;
}

void prof_procs__stats(const struct prof_procs *t, struct prof_procs_stats *out)
{
	*out = t->stats;
	out->aspaces = t->count;
}
