// SPDX-License-Identifier: MIT
#include "unwind.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"

/* Identity of the vDSO's table: the same image in every native process. */
#define VDSO_IDENT 0x7664736f2d637069ULL

struct utable {
	uint64_t ident; /* sym_dso__identity(), or VDSO_IDENT */
	uint32_t id; /* index in unwind_tables, valid while loaded */
	uint32_t first, count; /* rows in unwind_rows */
	bool loaded; /* rows are in the BPF maps */
	bool no_cfi; /* no usable CFI (or it did not fit): frame pointers */
	uint64_t retry_ns; /* no room when built: try again after this time (0 = never) */
	uint32_t refs; /* processes whose proc_maps entry uses it */
	uint64_t last_used; /* u->tick of the last sync that used it */
	/* A copy of the rows for the user-space walker (LRU, COPY_BUDGET), or NULL. */
	struct prof_unwind_row *copy;
	uint64_t copy_used_ns; /* CLOCK_MONOTONIC of its last use (LRU, COPY_TTL_NS) */
	struct utable *next; /* hash chain */
};

/*
 * Bytes of row copies kept for finishing snapshots (one syscall per row
 * read would cost ~600 syscalls per snapshot): libc's rows are 226 KB.
 */
#define COPY_BUDGET (2u << 20)
/*
 * ... and dropped after a minute unused: snapshots come from processes whose
 * table was just built, so a copy that no snapshot needed for a minute is
 * memory kept for nothing (after a burst of new programs, up to the 2 MiB).
 */
#define COPY_TTL_NS (60ULL * 1000000000)

struct upid {
	uint32_t pid;
	uint32_t aspace, gen; /* what proc_maps[pid] holds now */
	struct utable **tabs; /* tables it references (one ref each) */
	uint32_t ntabs;
	struct upid *next;
};

struct extent {
	uint32_t start, len;
};

struct prof_unwinder {
	struct prof_unwind_maps m;
	const struct sym_vdso *vdso;
	struct utable **tb; /* hash of tables by identity */
	size_t ntb, ntables;
	struct upid **pb; /* hash of pids */
	size_t npb;
	struct extent *free; /* free row ranges, sorted by start, coalesced */
	size_t nfree, capfree;
	uint32_t *free_ids; /* table ids released by evictions */
	size_t nfree_ids;
	uint32_t next_id; /* ids below it have been handed out */
	uint64_t tick;
	uint64_t copy_bytes; /* in utable.copy arrays */
	struct prof_proc_maps *val; /* scratch for proc_maps writes */
	struct prof_unwinder_stats st;
};

static const char *const stop_names[PROF_UW__COUNT] = {
	[PROF_UW_RUNNING] = "running",
	[PROF_UW_COMPLETE] = "complete",
	[PROF_UW_TRUNCATED] = "truncated",
	[PROF_UW_SNAPSHOT] = "snapshot",
	[PROF_UW_SNAPSHOT_LOST] = "snapshot_lost",
	[PROF_UW_NO_MAPPING] = "no_mapping",
	[PROF_UW_FP_END] = "fp_end",
	[PROF_UW_FP_BAD] = "fp_bad",
	[PROF_UW_READ_FAILED] = "read_failed",
	[PROF_UW_NO_PROGRESS] = "no_progress",
	[PROF_UW_NOT_IN_TABLE] = "not_in_table",
};

const char *prof_uw_stop_name(enum prof_uw_stop why)
{
	return (unsigned int)why < PROF_UW__COUNT && stop_names[why] ? stop_names[why] : "other";
}

/* The symbolizer's rule numbers are the BPF rows' (bpf/profile.h). */
_Static_assert((int)SYM_CFA_NONE == (int)PROF_UW_NONE && (int)SYM_CFA_SP == (int)PROF_UW_SP &&
		       (int)SYM_CFA_FP == (int)PROF_UW_FP &&
		       (int)SYM_CFA_FP_DEREF == (int)PROF_UW_FP_DEREF &&
		       (int)SYM_CFA_PLT == (int)PROF_UW_PLT &&
		       (int)SYM_CFA_SIGNAL == (int)PROF_UW_SIGNAL &&
		       (int)SYM_CFA_END == (int)PROF_UW_END &&
		       (int)SYM_CFA_UNSUPPORTED == (int)PROF_UW_UNSUPPORTED,
	       "rule numbers");

struct prof_unwinder *prof_unwinder__new(const struct prof_unwind_maps *maps,
					 const struct sym_vdso *vdso)
{
	struct prof_unwinder *u = xcalloc(1, sizeof(*u));

	u->m = *maps;
	u->vdso = vdso;
	u->ntb = 1024;
	u->tb = xcalloc(u->ntb, sizeof(*u->tb));
	u->npb = 4096;
	u->pb = xcalloc(u->npb, sizeof(*u->pb));
	u->val = xcalloc(1, sizeof(*u->val));
	if (u->m.nrows) {
		u->free = xmalloc(sizeof(*u->free));
		u->free[0] = (struct extent){0, u->m.nrows};
		u->nfree = u->capfree = 1;
	}
	u->st.rows_capacity = u->m.nrows;
	return u;
}

void prof_unwinder__free(struct prof_unwinder *u)
{
	if (!u)
		return;
	for (size_t b = 0; b < u->ntb; b++) {
		for (struct utable *t = u->tb[b], *next; t; t = next) {
			next = t->next;
			free(t->copy);
			free(t);
		}
	}
	for (size_t b = 0; b < u->npb; b++) {
		for (struct upid *p = u->pb[b], *next; p; p = next) {
			next = p->next;
			free(p->tabs);
			free(p);
		}
	}
	free(u->tb);
	free(u->pb);
	free(u->free);
	free(u->free_ids);
	free(u->val);
	free(u);
}

/* ---- the row array: first-fit ranges ------------------------------------------------- */

static bool rows_alloc(struct prof_unwinder *u, uint32_t len, uint32_t *start)
{
	for (size_t i = 0; i < u->nfree; i++) {
		if (u->free[i].len < len)
			continue;
		*start = u->free[i].start;
		u->free[i].start += len;
		u->free[i].len -= len;
		if (u->free[i].len == 0) {
			memmove(&u->free[i], &u->free[i + 1],
				(u->nfree - i - 1) * sizeof(*u->free));
			u->nfree--;
		}
		return true;
	}
	return false;
}

static void rows_release(struct prof_unwinder *u, uint32_t start, uint32_t len)
{
	size_t i = 0;

	while (i < u->nfree && u->free[i].start < start)
		i++;
	if (u->nfree == u->capfree) {
		u->capfree = u->capfree ? u->capfree * 2 : 16;
		u->free = xrealloc(u->free, u->capfree * sizeof(*u->free));
	}
	memmove(&u->free[i + 1], &u->free[i], (u->nfree - i) * sizeof(*u->free));
	u->free[i] = (struct extent){start, len};
	u->nfree++;
	/* Coalesce with the next, then with the previous range. */
	if (i + 1 < u->nfree && u->free[i].start + u->free[i].len == u->free[i + 1].start) {
		u->free[i].len += u->free[i + 1].len;
		memmove(&u->free[i + 1], &u->free[i + 2], (u->nfree - i - 2) * sizeof(*u->free));
		u->nfree--;
	}
	if (i > 0 && u->free[i - 1].start + u->free[i - 1].len == u->free[i].start) {
		u->free[i - 1].len += u->free[i].len;
		memmove(&u->free[i], &u->free[i + 1], (u->nfree - i - 1) * sizeof(*u->free));
		u->nfree--;
	}
}

/* ---- tables ------------------------------------------------------------------------- */

static struct utable **table_slot(struct prof_unwinder *u, uint64_t ident)
{
	struct utable **pp = &u->tb[hash_u64(ident, 0x243f6a88) & (u->ntb - 1)];

	while (*pp && (*pp)->ident != ident)
		pp = &(*pp)->next;
	return pp;
}

/* Takes a table out of the BPF maps and forgets it; it is rebuilt when needed again. */
static void table_evict(struct prof_unwinder *u, struct utable *t)
{
	struct utable **pp = table_slot(u, t->ident);

	if (t->loaded) {
		struct prof_unwind_table none = {0, 0};

		bpf_map_update_elem(u->m.tables_fd, &t->id, &none, BPF_ANY);
		rows_release(u, t->first, t->count);
		u->free_ids = xrealloc(u->free_ids, (u->nfree_ids + 1) * sizeof(*u->free_ids));
		u->free_ids[u->nfree_ids++] = t->id;
		u->st.tables--;
		u->st.rows_used -= t->count;
		u->st.tables_evicted++;
	}
	if (t->copy) {
		u->copy_bytes -= (uint64_t)t->count * sizeof(*t->copy);
		free(t->copy);
	}
	*pp = t->next;
	u->ntables--;
	free(t);
}

/* Drops row copies, least recently used first, until @need more bytes fit. */
static void copies_make_room(struct prof_unwinder *u, uint64_t need, const struct utable *keep)
{
	while (u->copy_bytes + need > COPY_BUDGET) {
		struct utable *victim = NULL;

		for (size_t b = 0; b < u->ntb; b++)
			for (struct utable *t = u->tb[b]; t; t = t->next)
				if (t->copy && t != keep &&
				    (!victim || t->copy_used_ns < victim->copy_used_ns))
					victim = t;
		if (!victim)
			return;
		u->copy_bytes -= (uint64_t)victim->count * sizeof(*victim->copy);
		free(victim->copy);
		victim->copy = NULL;
	}
}

/* Keeps @rows (malloc'ed, @t->count of them) as @t's copy, or frees them. */
static void keep_copy(struct prof_unwinder *u, struct utable *t, struct prof_unwind_row *rows)
{
	uint64_t bytes = (uint64_t)t->count * sizeof(*rows);

	copies_make_room(u, bytes, t);
	if (u->copy_bytes + bytes > COPY_BUDGET) {
		free(rows);
		return;
	}
	t->copy = rows;
	t->copy_used_ns = now_mono_ns();
	u->copy_bytes += bytes;
}

/* @t's rows in memory, read back from the BPF array when not cached; NULL on failure. */
static const struct prof_unwind_row *table_rows(struct prof_unwinder *u, struct utable *t)
{
	struct prof_unwind_row *rows;
	uint32_t *keys, prev = t->first - 1, out;
	__u32 count = t->count;

	if (t->copy) {
		t->copy_used_ns = now_mono_ns();
		return t->copy;
	}
	if ((uint64_t)t->count * sizeof(*rows) > COPY_BUDGET)
		return NULL;
	rows = xmalloc((size_t)t->count * sizeof(*rows));
	keys = xmalloc((size_t)t->count * sizeof(*keys));
	/* Array batches continue after the key given: start after first - 1. */
	if (bpf_map_lookup_batch(u->m.rows_fd, t->first ? &prev : NULL, &out, keys, rows, &count,
				 NULL) &&
	    errno != ENOENT) {
		count = 0;
	}
	free(keys);
	if (count != t->count) {
		free(rows);
		return NULL;
	}
	keep_copy(u, t, rows);
	return t->copy;
}

/* Evicts the least recently used table that no process uses; false when there is none. */
static bool evict_one(struct prof_unwinder *u, const struct utable *keep)
{
	struct utable *victim = NULL;

	for (size_t b = 0; b < u->ntb; b++) {
		for (struct utable *t = u->tb[b]; t; t = t->next) {
			if (t == keep || t->refs || !t->loaded)
				continue;
			if (!victim || t->last_used < victim->last_used)
				victim = t;
		}
	}
	if (!victim)
		return false;
	table_evict(u, victim);
	return true;
}

/*
 * Converts symbolizer rows to the BPF format. A row whose offsets do not
 * fit becomes UNSUPPORTED (the walker falls back to frame pointers there).
 * -ERANGE when an address does not fit 32 bits.
 */
static int convert_rows(struct prof_unwinder *u, const struct sym_unwind_row *in, size_t n,
			struct prof_unwind_row *out)
{
	for (size_t i = 0; i < n; i++) {
		const struct sym_unwind_row *s = &in[i];
		struct prof_unwind_row *r = &out[i];

		if (s->pc > UINT32_MAX)
			return -ERANGE;
		*r = (struct prof_unwind_row){.pc = (uint32_t)s->pc, .rule = s->rule};
		if (s->rule == SYM_CFA_PLT) {
			r->cfa_off8 = 1;
			r->fp_off8 = (int8_t)s->plt_cut;
			continue;
		}
		if (s->rule != SYM_CFA_SP && s->rule != SYM_CFA_FP && s->rule != SYM_CFA_FP_DEREF)
			continue;
		if (s->cfa_off % 8 || s->cfa_off / 8 < INT16_MIN || s->cfa_off / 8 > INT16_MAX ||
		    s->fp_off % 8 || s->fp_off / 8 < INT8_MIN || s->fp_off / 8 > INT8_MAX) {
			r->rule = PROF_UW_UNSUPPORTED;
			u->st.rows_unsupported++;
			continue;
		}
		r->cfa_off8 = (int16_t)(s->cfa_off / 8);
		r->fp_off8 = (int8_t)(s->fp_off / 8);
	}
	return 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Writes @n rows at index @start of unwind_rows, in batches of 1024. 0 or -errno. */
static int write_rows(struct prof_unwinder *u, uint32_t start, struct prof_unwind_row *rows,
		      uint32_t n)
{
	uint32_t keys[1024];

	for (uint32_t done = 0; done < n;) {
		__u32 count = n - done < 1024 ? n - done : 1024;

		for (uint32_t i = 0; i < count; i++)
			keys[i] = start + done + i;
		if (bpf_map_update_batch(u->m.rows_fd, keys, rows + done, &count, NULL))
			return -errno;
		done += count;
	}
	return 0;
}

/* Loads @rows (converted) as table @t; false when there is no room. */
static bool table_load(struct prof_unwinder *u, struct utable *t, const struct sym_unwind_row *rows,
		       size_t n)
{
	struct prof_unwind_table where;
	struct prof_unwind_row *tmp;
	uint32_t start, id;

	/* The walker's row search takes 24 steps: 2^24 rows at most per table. */
	if (n == 0 || n > u->m.nrows || n > (1U << 24))
		return false;
	tmp = xmalloc(n * sizeof(*tmp));
	if (convert_rows(u, rows, n, tmp)) {
		free(tmp);
		return false;
	}
	while (!rows_alloc(u, (uint32_t)n, &start)) {
		if (!evict_one(u, t)) {
			free(tmp);
			u->st.tables_dropped_full++;
			return false;
		}
	}
	if (u->nfree_ids) {
		id = u->free_ids[--u->nfree_ids];
	} else if (u->next_id < u->m.ntables) {
		id = u->next_id++;
	} else {
		/* Out of ids: evict until one is free. */
		while (!u->nfree_ids && evict_one(u, t))
			;
		if (!u->nfree_ids) {
			rows_release(u, start, (uint32_t)n);
			free(tmp);
			u->st.tables_dropped_full++;
			return false;
		}
		id = u->free_ids[--u->nfree_ids];
	}
	if (write_rows(u, start, tmp, (uint32_t)n)) {
		rows_release(u, start, (uint32_t)n);
		u->free_ids = xrealloc(u->free_ids, (u->nfree_ids + 1) * sizeof(*u->free_ids));
		u->free_ids[u->nfree_ids++] = id;
		free(tmp);
		return false;
	}
	/* The rows are in place before the walker can see the range. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	where = (struct prof_unwind_table){start, (uint32_t)n};
	if (bpf_map_update_elem(u->m.tables_fd, &id, &where, BPF_ANY)) {
		rows_release(u, start, (uint32_t)n);
		u->free_ids = xrealloc(u->free_ids, (u->nfree_ids + 1) * sizeof(*u->free_ids));
		u->free_ids[u->nfree_ids++] = id;
		free(tmp);
		return false;
	}
	t->id = id;
	t->first = start;
	t->count = (uint32_t)n;
	t->loaded = true;
	keep_copy(u, t, tmp); /* new tables are the ones snapshots need next */
	u->st.tables++;
	u->st.rows_used += n;
	return true;
}

/*
 * The table of a file (@d) or of the vDSO (@d NULL), built and loaded on
 * first use. Never NULL; ->no_cfi says whether it can be used.
 */
static struct utable *table_get(struct prof_unwinder *u, struct sym_dso *d)
{
	uint64_t ident = d ? sym_dso__identity(d) : VDSO_IDENT;
	struct utable **pp = table_slot(u, ident), *t = *pp;
	struct sym_unwind_row *rows = NULL;
	const struct sym_unwind_row *vrows;
	size_t n = 0;
	uint64_t t0;
	int err;

	if (t && t->retry_ns && mono_ns() >= t->retry_ns) {
		/* It did not fit last time: forget it, and try again below. */
		*pp = t->next;
		u->ntables--;
		free(t);
		t = NULL;
	}
	if (t) {
		t->last_used = u->tick;
		return t;
	}
	t = xcalloc(1, sizeof(*t));
	t->ident = ident;
	t->last_used = u->tick;
	t->next = *pp; /* not NULL after a retry unlinked the old entry here */
	*pp = t;
	u->ntables++;

	t0 = mono_ns();
	if (d) {
		struct sym_unwind_stats st;

		err = sym_dso__unwind_rows(d, &rows, &n, &st);
		vrows = rows;
	} else {
		vrows = sym_vdso__unwind_rows(u->vdso, &n);
		err = vrows ? 0 : -ENODATA;
	}
	u->st.tables_built++;
	if (err || !table_load(u, t, vrows, n)) {
		t->no_cfi = true;
		if (!err) /* no room now (every table in use): not forever */
			t->retry_ns = mono_ns() + 60 * 1000000000ULL;
		u->st.files_without_cfi++;
		pr_debug("unwind: %s: no usable CFI (%s); frame pointers there",
			 d ? sym_dso__path(d) : "[vdso]", err ? strerror(-err) : "no room");
	}
	u->st.build_ns += mono_ns() - t0;
	free(rows);
	return t;
}

/* ELF virtual address = address - bias, for a mapping with a table. */
static bool vma_bias(const struct prof_vma *v, uint64_t *bias)
{
	if (v->kind == PROF_VMA_VDSO) {
		*bias = v->start; /* the vDSO's rows are offsets in the mapping */
		return true;
	}
	return v->kind == PROF_VMA_FILE && v->dso &&
	       sym_dso__load_bias(v->dso, v->start, v->end, v->pgoff, bias) == 0;
}

/* The table for a mapping, or NULL when it is unwound with frame pointers. */
static struct utable *vma_table(struct prof_unwinder *u, const struct prof_vma *v)
{
	struct utable *t;

	if (v->kind == PROF_VMA_FILE && v->dso)
		t = table_get(u, v->dso);
	else if (v->kind == PROF_VMA_VDSO && u->vdso)
		t = table_get(u, NULL);
	else
		return NULL;
	return t->no_cfi || !t->loaded ? NULL : t;
}

/* ---- processes ---------------------------------------------------------------------- */

static struct upid **pid_slot(struct prof_unwinder *u, uint32_t pid)
{
	struct upid **pp = &u->pb[hash_u64(pid, 0x13198a2e) & (u->npb - 1)];

	while (*pp && (*pp)->pid != pid)
		pp = &(*pp)->next;
	return pp;
}

static void drop_refs(struct upid *p)
{
	for (uint32_t i = 0; i < p->ntabs; i++)
		p->tabs[i]->refs--;
	free(p->tabs);
	p->tabs = NULL;
	p->ntabs = 0;
}

int prof_unwinder__sync(struct prof_unwinder *u, const struct prof_aspace *as)
{
	struct upid **pp = pid_slot(u, as->pid), *p = *pp;
	struct prof_proc_maps *val = u->val;
	struct utable **tabs;
	uint32_t ntabs = 0;
	int err = 0;

	if (as->dead_ns || as->read_err || !as->maps_gen)
		return 0; /* nothing current to write: a later exec or exit owns the entry */
	if (p && p->aspace == as->id && p->gen == as->maps_gen)
		return 0;
	u->tick++;
	tabs = xcalloc(as->nvmas ? as->nvmas : 1, sizeof(*tabs));
	memset(val, 0, sizeof(*val));
	val->aspace = as->id;
	/* Too many: anonymous (JIT) mappings go first, files are what CFI needs. */
	bool skip_anon = as->nvmas > PROF_MAX_EXEC_MAPS;

	for (uint32_t i = 0; i < as->nvmas; i++) {
		const struct prof_vma *v = &as->vmas[i];
		struct prof_exec_map *xm;
		struct utable *t;
		uint64_t bias;

		if ((skip_anon && v->kind == PROF_VMA_ANON) || val->n == PROF_MAX_EXEC_MAPS) {
			u->st.maps_over_limit++;
			val->flags |= PROF_PM_INCOMPLETE;
			continue;
		}
		xm = &val->m[val->n++];
		xm->start = v->start;
		xm->end = v->end;
		xm->kind = v->kind == PROF_VMA_ANON ? PROF_XM_ANON : PROF_XM_NO_CFI;
		t = vma_table(u, v);
		if (t && vma_bias(v, &bias)) {
			xm->kind = PROF_XM_TABLE;
			xm->table = t->id;
			xm->bias = bias;
			t->refs++;
			tabs[ntabs++] = t;
		}
	}
	if (bpf_map_update_elem(u->m.proc_maps_fd, &as->pid, val, BPF_ANY)) {
		err = -errno;
		u->st.procs_sync_errors++;
		for (uint32_t i = 0; i < ntabs; i++)
			tabs[i]->refs--;
		free(tabs);
		return err;
	}
	u->st.procs_synced++;
	if (!p) {
		p = xcalloc(1, sizeof(*p));
		p->pid = as->pid;
		*pp = p;
	}
	drop_refs(p);
	p->tabs = tabs;
	p->ntabs = ntabs;
	p->aspace = as->id;
	p->gen = as->maps_gen;
	return 0;
}

void prof_unwinder__exit(struct prof_unwinder *u, uint32_t pid, uint32_t aspace)
{
	struct upid **pp = pid_slot(u, pid), *p = *pp;

	if (!p || p->aspace != aspace)
		return;
	*pp = p->next;
	drop_refs(p);
	free(p);
}

/* Frees the row copies no snapshot used for COPY_TTL_NS. */
static void copies_expire(struct prof_unwinder *u)
{
	uint64_t now = now_mono_ns();

	for (size_t b = 0; b < u->ntb && u->copy_bytes; b++)
		for (struct utable *t = u->tb[b]; t; t = t->next)
			if (t->copy && now - t->copy_used_ns > COPY_TTL_NS) {
				u->copy_bytes -= (uint64_t)t->count * sizeof(*t->copy);
				free(t->copy);
				t->copy = NULL;
			}
}

void prof_unwinder__sweep(struct prof_unwinder *u)
{
	copies_expire(u);
	for (size_t b = 0; b < u->npb; b++) {
		struct upid **pp = &u->pb[b];

		while (*pp) {
			struct upid *p = *pp;
			struct prof_proc_maps *cur = u->val;

			if (kill((pid_t)p->pid, 0) == 0 || errno != ESRCH) {
				pp = &p->next;
				continue;
			}
			/* BPF deletes the entry at the leader's exit; a missed one goes here. */
			if (bpf_map_lookup_elem(u->m.proc_maps_fd, &p->pid, cur) == 0 &&
			    cur->aspace == p->aspace)
				bpf_map_delete_elem(u->m.proc_maps_fd, &p->pid);
			*pp = p->next;
			drop_refs(p);
			free(p);
			u->st.procs_swept++;
		}
	}
}

/* ---- finishing snapshots ---------------------------------------------------------------- */

struct uwalk {
	uint64_t pc, sp, bp;
	bool exact, fp_step;
	bool mark_exact; /* the last frame stored is a signal trampoline */
	const struct prof_snapshot *snap;
};

/* A word of the stack, from the snapshot's copy only. */
static bool snap_word(const struct uwalk *w, uint64_t addr, uint64_t *out)
{
	const struct prof_snapshot *s = w->snap;

	if (addr < s->sp || addr + 8 < addr || addr + 8 > s->stack_base + s->stack_len ||
	    s->stack_len > PROF_SNAP_STACK)
		return false;
	memcpy(out, &s->stack[addr - s->stack_base], 8);
	return true;
}

static enum prof_uw_stop fp_step(struct uwalk *w)
{
	uint64_t nbp, ra;

	if (w->bp == 0)
		return PROF_UW_FP_END;
	if (w->bp < w->sp || (w->bp & 7))
		return PROF_UW_FP_BAD;
	if (!snap_word(w, w->bp, &nbp) || !snap_word(w, w->bp + 8, &ra))
		return PROF_UW_READ_FAILED;
	w->sp = w->bp + 16;
	w->bp = nbp;
	w->pc = ra;
	w->exact = false;
	w->fp_step = true;
	return ra ? PROF_UW_RUNNING : PROF_UW_COMPLETE;
}

/* The user-space twin of unwind_one() in bpf/profile.bpf.c. */
static enum prof_uw_stop step(struct prof_unwinder *u, struct prof_procs *procs,
			      struct prof_aspace *as, struct uwalk *w)
{
	uint64_t look = w->exact ? w->pc : w->pc - 1;
	const struct prof_vma *v = prof_procs__find_vma(procs, as, look);
	struct prof_unwind_row row_mem, *row = &row_mem;
	const struct prof_unwind_row *rows;
	struct utable *t;
	uint64_t bias, vaddr, cfa, ra;
	size_t lo, hi;

	if (!v)
		return PROF_UW_NO_MAPPING;
	t = vma_table(u, v);
	if (!t || !vma_bias(v, &bias))
		return fp_step(w);
	vaddr = look - bias;
	if (vaddr > UINT32_MAX)
		return PROF_UW_NOT_IN_TABLE;
	/* The same rows the kernel reads: a cached copy, else one lookup per step. */
	lo = 0;
	hi = t->count;
	rows = table_rows(u, t);
	while (rows && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rows[mid].pc <= (uint32_t)vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (rows) {
		if (lo == 0)
			return fp_step(w);
		row_mem = rows[lo - 1];
		goto apply;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t key = t->first + (uint32_t)mid;

		if (bpf_map_lookup_elem(u->m.rows_fd, &key, row))
			return PROF_UW_NOT_IN_TABLE;
		if (row->pc <= (uint32_t)vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return fp_step(w);
	{
		uint32_t key = t->first + (uint32_t)(lo - 1);

		if (bpf_map_lookup_elem(u->m.rows_fd, &key, row))
			return PROF_UW_NOT_IN_TABLE;
	}
apply:
	switch (row->rule) {
	case PROF_UW_SP:
		cfa = w->sp + (int64_t)row->cfa_off8 * 8;
		break;
	case PROF_UW_FP:
		cfa = w->bp + (int64_t)row->cfa_off8 * 8;
		break;
	case PROF_UW_FP_DEREF:
		if (!snap_word(w, w->bp + (int64_t)row->cfa_off8 * 8, &cfa))
			return PROF_UW_READ_FAILED;
		break;
	case PROF_UW_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (uint64_t)row->fp_off8 ? 8 : 0);
		break;
	case PROF_UW_SIGNAL: {
		uint64_t r[7]; /* ucontext: rbp .. rip, see the BPF walker */

		for (int i = 0; i < 7; i++)
			if (!snap_word(w, w->sp + 40 + 80 + 8 * i, &r[i]))
				return PROF_UW_READ_FAILED;
		w->mark_exact = true; /* the trampoline's address: pushed, not called */
		w->bp = r[0];
		w->sp = r[5];
		w->pc = r[6];
		w->exact = true;
		w->fp_step = false;
		return w->pc ? PROF_UW_RUNNING : PROF_UW_COMPLETE;
	}
	case PROF_UW_END:
		return PROF_UW_COMPLETE;
	default:
		return fp_step(w);
	}
	if (cfa <= w->sp)
		return PROF_UW_NO_PROGRESS;
	if (!snap_word(w, cfa - 8, &ra))
		return PROF_UW_READ_FAILED;
	if (row->fp_off8 && row->rule != PROF_UW_PLT &&
	    !snap_word(w, cfa + (int64_t)row->fp_off8 * 8, &w->bp))
		return PROF_UW_READ_FAILED;
	w->sp = cfa;
	w->pc = ra;
	w->exact = false;
	w->fp_step = false;
	return ra ? PROF_UW_RUNNING : PROF_UW_COMPLETE;
}

enum prof_uw_stop prof_unwinder__finish(struct prof_unwinder *u, struct prof_procs *procs,
					struct prof_aspace *as, const struct prof_snapshot *snap,
					uint64_t *frames, uint32_t *n)
{
	struct uwalk w = {
		.pc = snap->pc,
		.sp = snap->sp,
		.bp = snap->bp,
		.exact = snap->flags & PROF_SNAP_EXACT_PC,
		.snap = snap,
	};
	enum prof_uw_stop why = PROF_UW_RUNNING;
	uint32_t k = snap->nuser < PROF_MAX_STACK_DEPTH ? snap->nuser : PROF_MAX_STACK_DEPTH;

	u->tick++;
	memcpy(frames, snap->user, k * sizeof(*frames));
	if (k == 0)
		frames[k++] = snap->pc;
	u->st.snapshots++;
	while (why == PROF_UW_RUNNING) {
		why = step(u, procs, as, &w);
		if (w.mark_exact) {
			frames[k - 1] |= PROF_FRAME_EXACT;
			w.mark_exact = false;
		}
		if (why != PROF_UW_RUNNING)
			break;
		if (k == PROF_MAX_STACK_DEPTH) {
			why = PROF_UW_TRUNCATED;
			break;
		}
		frames[k++] = w.pc | (w.exact ? PROF_FRAME_EXACT : 0);
		u->st.snapshot_frames++;
	}
	u->st.snapshot_stops[why]++;
	*n = k;
	return why;
}

void prof_unwinder__stats(const struct prof_unwinder *u, struct prof_unwinder_stats *out)
{
	*out = u->st;
	out->row_copy_bytes = u->copy_bytes;
}
