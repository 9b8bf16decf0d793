/* SPDX-License-Identifier: MIT */
/*
 * profiler/unwind.h — DWARF CFI unwind tables in BPF maps, and the
 * user-space end of stacks the kernel could not finish.
 *
 * Tables: the rows of one file (symbolizer's sym_dso__unwind_rows()) are
 * built once per file identity (sym_dso__identity: build-id, else device,
 * inode, size, mtime) and copied into the `unwind_rows` array that the BPF
 * walker binary-searches; `unwind_tables[id]` says where. Every process
 * that maps the file uses the same table. A table no live process uses
 * stays loaded until the array needs its space (least recently used out
 * first).
 *
 * Processes: prof_unwinder__sync() writes a process's executable mappings
 * (start, end, load bias, table id) into `proc_maps[tgid]`, tagged with its
 * address-space id. The BPF side deletes the entry at exec and exit.
 *
 * Snapshots: a sample taken before its process's mappings or rows were in
 * the maps arrives as a struct prof_snapshot; prof_unwinder__finish()
 * walks on from where the kernel stopped, with the same rows, over the
 * copy of the stack the snapshot carries.
 *
 * Threading: one thread (the collector's) owns an unwinder.
 */
#ifndef BPFPROF_UNWIND_H
#define BPFPROF_UNWIND_H

#include <stdint.h>

#include "../bpf/profile.h"
#include "../symbolizer/symbolizer.h"
#include "proc.h"

/* The BPF maps the unwinder fills (from the sampler; borrowed). */
struct prof_unwind_maps {
	int rows_fd; /* `unwind_rows` */
	uint32_t nrows; /* its entries */
	int tables_fd; /* `unwind_tables` */
	uint32_t ntables; /* its entries */
	int proc_maps_fd; /* `proc_maps` */
};

struct prof_unwinder_stats {
	uint64_t tables; /* tables loaded in the BPF maps now */
	uint64_t rows_used; /* rows they take */
	uint64_t rows_capacity; /* entries of unwind_rows */
	uint64_t tables_built; /* tables built since start */
	uint64_t tables_evicted; /* unloaded to make room */
	uint64_t files_without_cfi; /* files unwound with frame pointers (no usable CFI) */
	uint64_t tables_dropped_full; /* tables that did not fit, even after evicting */
	uint64_t build_ns; /* time spent building tables */
	uint64_t rows_unsupported; /* rows with a rule the walker does not follow */
	uint64_t procs_synced; /* proc_maps writes */
	uint64_t procs_sync_errors; /* ... that failed (map full) */
	uint64_t procs_swept; /* processes forgotten by prof_unwinder__sweep() */
	uint64_t maps_over_limit; /* executable mappings beyond PROF_MAX_EXEC_MAPS, left out */
	uint64_t row_copy_bytes; /* rows kept in memory for finishing snapshots (max 2 MiB) */
	uint64_t snapshots; /* snapshots finished in user space */
	uint64_t snapshot_frames; /* frames they added */
	uint64_t snapshot_stops[PROF_UW__COUNT]; /* how those walks ended */
};

struct prof_unwinder;

/* @vdso (borrowed, may be NULL) gives the vDSO's rows. */
struct prof_unwinder *prof_unwinder__new(const struct prof_unwind_maps *maps,
					 const struct sym_vdso *vdso);
void prof_unwinder__free(struct prof_unwinder *u);

/*
 * Writes @as's executable mappings to proc_maps[@as->pid], building and
 * loading the tables of files not seen before. Nothing is written when
 * the entry is already the one for (@as->id, @as->maps_gen). 0 or -errno.
 */
int prof_unwinder__sync(struct prof_unwinder *u, const struct prof_aspace *as);

/*
 * The address space @aspace of @pid is gone (exit, or exec): its tables may
 * be evicted now. A newer address space of the pid is left alone.
 */
void prof_unwinder__exit(struct prof_unwinder *u, uint32_t pid, uint32_t aspace);

/*
 * Forgets processes that are gone without an exit event (the leader
 * exited first, a lost event): drops their table references and their
 * proc_maps entries. O(processes) kill(pid, 0) calls; run it once a drain.
 */
void prof_unwinder__sweep(struct prof_unwinder *u);

/*
 * Finishes the walk of @snap in @as: copies the frames the kernel found to
 * @frames (leaf first) and adds callers until the outermost frame, a
 * failure, or PROF_MAX_STACK_DEPTH frames. Mappings are looked up through
 * @procs (which re-reads the maps of a live process on a miss). Stack
 * words come only from the snapshot's copy. *@n gets the frame count;
 * returns how the walk ended (PROF_UW_COMPLETE, ...).
 */
enum prof_uw_stop prof_unwinder__finish(struct prof_unwinder *u, struct prof_procs *procs,
					struct prof_aspace *as, const struct prof_snapshot *snap,
					uint64_t *frames, uint32_t *n);

void prof_unwinder__stats(const struct prof_unwinder *u, struct prof_unwinder_stats *out);

/* "complete", "truncated", ...: the metric label of a stop reason. */
const char *prof_uw_stop_name(enum prof_uw_stop why);

#endif
