/* SPDX-License-Identifier: MIT */
/*
 * profiler/proc.h — process and address-space tracking.
 *
 * The BPF side gives every address space an id (bpf/profile.h, struct
 * prof_pid_info) and announces new ones through the ring buffer; the
 * tracker reads /proc/PID/maps right then, while the process is alive, and
 * opens every executable file it maps (sym_dsos__get_mapped keeps the file
 * descriptor). A process that exits before the next drain is therefore
 * still symbolized, with the mappings it had when it was sampled.
 *
 * Lifetime: an address space that died (exit, or replaced by exec) is freed
 * by prof_procs__gc() once every sample taken before its death has been
 * drained.
 */
#ifndef BPFPROF_PROC_H
#define BPFPROF_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "../bpf/profile.h"
#include "../symbolizer/symbolizer.h"

enum prof_vma_kind {
	PROF_VMA_FILE = 0, /* a file mapping: path and (if it could be opened) dso */
	PROF_VMA_VDSO, /* [vdso] */
	PROF_VMA_ANON, /* anonymous executable memory (JIT) */
};

struct prof_vma {
	uint64_t start, end, pgoff;
	char *path; /* as in /proc/PID/maps, without " (deleted)" */
	struct sym_dso *dso; /* owned reference, NULL when the file could not be opened */
	enum prof_vma_kind kind;
	bool deleted;
};

struct prof_aspace {
	uint32_t pid;
	uint32_t id;
	struct prof_vma *vmas; /* executable mappings, sorted by start */
	uint32_t nvmas;
	uint64_t dead_ns; /* CLOCK_MONOTONIC time of exit/exec, 0 while alive */
	uint64_t refreshed; /* drain number of the last re-read on a miss, UINT64_MAX = none */
	int read_err; /* last error reading /proc/PID/maps, 0 when fine */
	uint32_t maps_gen; /* bumped by every successful read of the maps */
	/*
	 * Container id (64 lowercase hex digits) from /proc/PID/cgroup, read when
	 * the address space is first tracked; "" when the process is in none.
	 */
	char container[65];
	/*
	 * The JIT's /tmp/perf-PID.map, owned; loaded by the collector on the first
	 * frame in anonymous executable memory, refreshed at most once per drain.
	 */
	struct sym_perfmap *perfmap;
	uint64_t perfmap_drain; /* collector drain of the last load/refresh, 0 = never */
	struct prof_aspace *next; /* hash chain (private) */
};

struct prof_procs_stats {
	uint64_t aspaces; /* address spaces tracked now */
	uint64_t maps_reads; /* /proc/PID/maps reads */
	uint64_t maps_errors; /* ... that failed (process already gone) */
	uint64_t refreshes; /* re-reads because an address was in no known mapping */
	uint64_t rescans; /* re-reads on the first samples after an exec */
};

struct prof_procs;

/* The tracker uses @dsos (borrowed: it must outlive the tracker). */
struct prof_procs *prof_procs__new(struct sym_dsos *dsos);
void prof_procs__free(struct prof_procs *t);

/* Handles one ring-buffer event (reads maps for NEW_PID/EXEC). */
void prof_procs__event(struct prof_procs *t, const struct prof_event *e);

/*
 * The address space (pid, id); when it was never announced (a lost event),
 * its maps are read now. Never NULL: a process already gone gets an empty
 * address space with read_err set. Owned by the tracker.
 */
struct prof_aspace *prof_procs__get(struct prof_procs *t, uint32_t pid, uint32_t id);

/* The address space (pid, id) if it is tracked, else NULL; reads nothing. */
const struct prof_aspace *prof_procs__find(const struct prof_procs *t, uint32_t pid, uint32_t id);

/*
 * The executable mapping containing @addr, or NULL. When no mapping
 * contains it and the process is alive, /proc/PID/maps is read again (at
 * most once per drain), which catches libraries loaded with dlopen().
 */
const struct prof_vma *prof_procs__find_vma(struct prof_procs *t, struct prof_aspace *as,
					    uint64_t addr);

/*
 * Called after a drain whose flip happened at @flip_ns: frees address
 * spaces that died before it, and starts a new drain number.
 */
void prof_procs__gc(struct prof_procs *t, uint64_t flip_ns);

void prof_procs__stats(const struct prof_procs *t, struct prof_procs_stats *out);

/*
 * The container id in the text of a /proc/PID/cgroup file (@text, NUL-
 * terminated), copied into @out (65 bytes) as 64 lowercase hex digits.
 * Recognises the runtimes' cgroup names, v1 and v2: docker-<id>.scope,
 * cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, and
 * /docker/<id>, /kubepods/.../<id>, /<namespace>/<id> (cgroupfs drivers).
 * The innermost such path component wins. Conmon processes of CRI-O and
 * podman (crio-conmon-<id>, libpod-conmon-<id>) are outside the container
 * and get none. Returns 0, or -ENOENT when there is no container id.
 */
int prof_cgroup_container_id(const char *text, char out[65]);

#endif
