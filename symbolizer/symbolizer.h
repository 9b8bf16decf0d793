/* SPDX-License-Identifier: MIT */
/*
 * symbolizer/symbolizer.h — turning addresses into names, locally.
 *
 * Three independent pieces, each usable on its own (and unit-tested that way):
 *
 *   sym_kallsyms  /proc/kallsyms (kernel and module text symbols)
 *   sym_procmaps  /proc/PID/maps parsing
 *   sym_dso       one ELF file identity: build-id, PT_LOAD layout and its
 *                 symbol table (.symtab, else .dynsym), loaded lazily,
 *                 shared by every process that maps the file.
 *   sym_dsos      the cache of sym_dso objects, keyed by file identity
 *                 (build-id when the file has one, else dev:inode:size:mtime).
 *   sym_perfmap   a JIT's /tmp/perf-PID.map (node --perf-basic-prof, JVM
 *                 agents, LuaJIT, .NET, wasmtime, ...)
 *   sym_vdso      the vDSO, the same image in every native-ABI process
 *   sym_demangler C++ and Rust names, through libiberty, cached
 *
 * Threading: none of these objects is internally locked. The collector
 * thread owns the sym_dsos cache and the kallsyms table.
 */
#ifndef BPFPROF_SYMBOLIZER_H
#define BPFPROF_SYMBOLIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- kernel symbols ---------------------------------------------------- */

struct sym_kallsyms;

struct sym_ksym {
	uint64_t addr; /* symbol start */
	const char *name; /* lives as long as the table */
	const char *module; /* NULL for vmlinux, else the module name ("ext4") */
};

/*
 * Loads text symbols (types t, T, w, W) from a kallsyms-format file, e.g.
 * "/proc/kallsyms". Malformed lines are skipped and counted (@nbad may be
 * NULL). Returns NULL with errno set when the file cannot be read, and
 * EPERM when every address is 0 (kptr_restrict hides them), ENODATA when
 * it holds no text symbol.
 *
 * One entry is kept per address (global T over weak W over local t, fewer
 * leading underscores, then by name). "__pfx_F"/"__cfi_F" padding symbols
 * right in front of F are folded into F: their bytes fall through into F.
 */
struct sym_kallsyms *sym_kallsyms__load(const char *path, size_t *nbad);
void sym_kallsyms__free(struct sym_kallsyms *k);
/* Entries kept (after folding __pfx_ symbols and duplicate addresses). */
size_t sym_kallsyms__count(const struct sym_kallsyms *k);
/* Heap held by the table, in bytes (~3 MB for a 6.x distribution kernel). */
size_t sym_kallsyms__bytes(const struct sym_kallsyms *k);

/*
 * The symbol containing @addr: the one with the highest start <= addr,
 * provided addr is below the next symbol (or within 1 MiB of the last
 * symbol of its module/vmlinux). NULL when none. O(log n).
 * An address in F's __pfx_ padding gives F, so addr may be up to 64 bytes
 * below the returned ->addr.
 */
const struct sym_ksym *sym_kallsyms__find(const struct sym_kallsyms *k, uint64_t addr);

/* ---- /proc/PID/maps ---------------------------------------------------- */

#define SYM_MAP_R 0x1
#define SYM_MAP_W 0x2
#define SYM_MAP_X 0x4
#define SYM_MAP_P 0x8 /* private */

struct sym_map_entry {
	uint64_t start, end; /* [start, end) */
	uint64_t pgoff; /* file offset of start */
	uint64_t inode;
	uint32_t dev_major, dev_minor;
	uint32_t perms; /* SYM_MAP_* */
	bool deleted; /* path ended in " (deleted)", stripped from @path */
	char *path; /* owned; "" for anonymous mappings, "[vdso]", ... */
};

/*
 * Parses a maps-format stream. Malformed lines are skipped and counted in
 * *@nbad (may be NULL). On success returns 0 and an array the caller frees
 * with sym_procmaps__free(). -errno on read errors.
 */
int sym_procmaps__parse(FILE *f, struct sym_map_entry **out, size_t *n, size_t *nbad);
/* Convenience: opens /proc/@pid/maps. -ENOENT/-ESRCH when the process is gone. */
int sym_procmaps__read(int pid, struct sym_map_entry **out, size_t *n);
void sym_procmaps__free(struct sym_map_entry *e, size_t n);

/* ---- ELF files ---------------------------------------------------------- */

struct sym_dsos;
struct sym_dso;

struct sym_result {
	const char *name; /* symbol name; lives as long as the dso */
	uint64_t sym_addr; /* symbol start (ELF virtual address) */
	uint64_t vaddr; /* the looked-up ELF virtual address */
};

/* Why a lookup failed; counted in struct sym_stats. */
enum sym_fail {
	SYM_FAIL_NONE = 0,
	SYM_FAIL_OPEN, /* file could not be opened (gone, permission) */
	SYM_FAIL_ELF, /* not a valid ELF file */
	SYM_FAIL_NOSYMS, /* ELF without .symtab and .dynsym */
	SYM_FAIL_NOSYM, /* address not covered by any symbol */
	SYM_FAIL_NOLOAD, /* file offset outside every PT_LOAD segment */
	SYM_FAIL__COUNT,
};

struct sym_stats {
	uint64_t dsos; /* live sym_dso objects */
	uint64_t dsos_loaded; /* ... of which have their symbol table loaded */
	uint64_t symbols; /* symbols held in memory */
	uint64_t bytes; /* approximate heap held by symbol tables */
	uint64_t lookups, hits; /* resolve calls and successful ones */
	uint64_t fail[SYM_FAIL__COUNT];
	/* DWARF (sym_dso__frames) */
	uint64_t dwarf_loaded; /* dsos with a libdw session open (own or separate debug file) */
	uint64_t dwarf_lookups, dwarf_hits; /* frames calls, and those that gave frames */
	uint64_t dwarf_cache_hits; /* ... answered from the per-dso cache of recent addresses */
	uint64_t dwarf_errors; /* lookups that met broken DWARF (counted, then -ENOENT) */
	uint64_t dwarf_bytes; /* estimated heap of the open libdw sessions */
	uint64_t dwarf_over_budget; /* sessions not opened: they did not fit the budget */
	uint64_t dwarf_releases; /* sessions (or reservations) that gave budget back */
	uint64_t idle_expired; /* idle dsos freed by sym_dsos__expire_idle() */
	uint64_t dwarf_expired; /* DWARF states closed by sym_dsos__expire_dwarf() */
};

/*
 * Files larger than this are refused (EFBIG): their symbol tables alone
 * would exceed the agent's memory budget.
 */
#define SYM_DSO_MAX_FILE_SIZE (1ULL << 30)

/* NULL with errno set only when libelf cannot be initialised. */
struct sym_dsos *sym_dsos__new(void);
/*
 * Bounds the memory of idle dsos (no reference left: every process that
 * mapped the file is gone), counting their symbol tables and the estimate of
 * their DWARF sessions; the least recently released go first. Also at most
 * 64 idle dsos. Default: no byte bound.
 */
void sym_dsos__set_idle_budget(struct sym_dsos *c, uint64_t bytes);

/*
 * Frees the idle dsos that went idle before @idle_before_ns
 * (CLOCK_MONOTONIC), with their symbol tables and DWARF sessions, and
 * returns how many. The agent calls it between drains, so that what it
 * holds follows the programs that run now, not every program that ever
 * ran: a file comes back from disk in milliseconds if it is mapped again.
 */
size_t sym_dsos__expire_idle(struct sym_dsos *c, uint64_t idle_before_ns);

/*
 * Closes the DWARF state (libdw session, indexes, cached answers, the
 * mapped debug file) of files still in use whose DWARF no lookup asked for
 * since @unused_before_ns (CLOCK_MONOTONIC), and returns how many. The next
 * sym_dso__frames() opens it again. libdw keeps every line table it read
 * until the session ends, so a session that stays open grows with every
 * new part of the program that gets a sample; closing the ones nobody asks
 * for keeps the memory of DWARF to what recent samples need. Call it when
 * no struct sym_frame from an earlier sym_dso__frames() is in use: their
 * strings go with the session.
 */
size_t sym_dsos__expire_dwarf(struct sym_dsos *c, uint64_t unused_before_ns);

/* Frees the cache; every dso must have been put already. NULL is a no-op. */
void sym_dsos__free(struct sym_dsos *c);

/*
 * The dso for a file mapped by a live process. The file is opened now,
 * through /proc/@pid/map_files/START-END (works for deleted files and other
 * mount namespaces), falling back to /proc/@pid/root/PATH, then PATH. The
 * descriptor is kept open by the dso so that the file can still be read
 * after the process exits or the file is deleted. Returns a new reference
 * (release with sym_dso__put()), or NULL with errno set.
 *
 * errno: from open() (ENOENT, EACCES, ...); ESTALE when the path now names
 * another inode than the mapped one; EISDIR / EINVAL for a directory / any
 * other non-regular file; EFBIG above SYM_DSO_MAX_FILE_SIZE. A regular file
 * that is not valid ELF still gives a dso (so the failure is cached by
 * identity); resolving in it fails with SYM_FAIL_ELF.
 *
 * The cache keeps up to 64 dsos whose last reference was put, and reuses
 * them on the next get of the same identity.
 */
struct sym_dso *sym_dsos__get_mapped(struct sym_dsos *c, int pid, const struct sym_map_entry *m);

/* The dso for a path on this machine (tests, `bpfprof symbolize -e`). New reference or NULL+errno.
 */
struct sym_dso *sym_dsos__get_path(struct sym_dsos *c, const char *path);

void sym_dso__get(struct sym_dso *d);
/* Drops a reference; NULL is a no-op. */
void sym_dso__put(struct sym_dso *d);

const char *sym_dso__path(const struct sym_dso *d);
/* Lowercase hex build-id, or NULL when the file has none. */
const char *sym_dso__build_id(const struct sym_dso *d);
/*
 * A 64-bit identity of the file's contents: a hash of the build-id, or of
 * device, inode, size and mtime when there is none. Equal for every
 * process that maps the same file (unwind tables are shared by it).
 */
uint64_t sym_dso__identity(const struct sym_dso *d);

/*
 * ELF virtual address of a file offset, through the PT_LOAD program
 * headers. 0 or -ENOENT (offset in no segment) / -EINVAL (bad ELF).
 */
int sym_dso__offset_to_vaddr(struct sym_dso *d, uint64_t file_offset, uint64_t *vaddr);

/*
 * The load bias of an executable mapping [@start, @end) of the file at
 * offset @pgoff: ELF virtual address = address - *@bias, from the
 * executable PT_LOAD segment the mapping holds. 0, or -ENOENT when it holds
 * none, -EINVAL for a file that is not ELF.
 */
int sym_dso__load_bias(struct sym_dso *d, uint64_t start, uint64_t end, uint64_t pgoff,
		       uint64_t *bias);

/*
 * Resolves a file offset (address - mapping start + mapping pgoff) to the
 * symbol containing it. The symbol table is loaded on first use.
 * Returns 0, or -ENOENT with r->vaddr still set when no symbol covers it,
 * or another -errno when the file cannot be used; *@why (may be NULL) gets
 * the reason. Every call is counted in the stats.
 * The other errors: -ERANGE (SYM_FAIL_NOLOAD), -ENOEXEC (SYM_FAIL_ELF),
 * -ENODATA (SYM_FAIL_NOSYMS: no .symtab/.dynsym, or no function in them),
 * -EFBIG (SYM_FAIL_NOSYMS: more than 4M functions, not loaded).
 */
int sym_dso__resolve(struct sym_dso *d, uint64_t file_offset, struct sym_result *r,
		     enum sym_fail *why);

/*
 * The CFA rule at ELF virtual address @vaddr, from the file's .eh_frame (or
 * .debug_frame) through libdw: CFA = DWARF register *@reg + *@offset (on
 * x86-64, register 7 is rsp and 6 is rbp). The CFI is opened on first use
 * and kept with the dso. Returns 0; -ENODATA when the file has no CFI;
 * -ENOENT when no FDE covers @vaddr; -EOPNOTSUPP when the rule is a DWARF
 * expression.
 */
int sym_dso__cfa(struct sym_dso *d, uint64_t vaddr, int *reg, int64_t *offset);

void sym_dsos__stats(const struct sym_dsos *c, struct sym_stats *out);

/* ---- unwind rows (CFI) -------------------------------------------------- */

struct Elf; /* libelf's */

/*
 * How to find the caller's frame from one address range, reduced from the
 * file's call frame information to what an x86-64 unwinder can do: the
 * return address is at CFA - 8 in every row except SIGNAL and END rows.
 */
enum sym_cfa_rule {
	SYM_CFA_NONE = 0, /* no CFI covers the address: a gap between FDEs */
	SYM_CFA_SP, /* CFA = rsp + cfa_off */
	SYM_CFA_FP, /* CFA = rbp + cfa_off */
	SYM_CFA_FP_DEREF, /* CFA = *(rbp + cfa_off): stack realignment (DW_OP_breg6; DW_OP_deref) */
	SYM_CFA_PLT, /* .plt entry: CFA = rsp + 8, + 8 more when (rip & 15) >= plt_cut */
	SYM_CFA_SIGNAL, /* the rt_sigreturn trampoline: registers are in the ucontext at rsp */
	SYM_CFA_END, /* the return address is undefined: the outermost frame (_start, clone3) */
	SYM_CFA_UNSUPPORTED, /* a rule the unwinder does not follow (another register, an
				expression) */
};

struct sym_unwind_row {
	uint64_t pc; /* ELF virtual address where the row starts; it holds up to the next row */
	int64_t cfa_off;
	int16_t fp_off; /* the caller's rbp is saved at CFA + fp_off; 0 = rbp is unchanged */
	uint8_t rule; /* enum sym_cfa_rule */
	uint8_t plt_cut; /* SYM_CFA_PLT only */
};

struct sym_unwind_stats {
	uint64_t fdes; /* FDEs found in .eh_frame and .debug_frame */
	uint64_t rows; /* rows after merging equal neighbours */
	uint64_t unsupported; /* rows with SYM_CFA_UNSUPPORTED */
	uint64_t bad_fdes; /* FDEs libdw could not evaluate (cut short) */
	uint64_t synthesized; /* PLT sections without CFI given rsp + 8 */
};

/*
 * The unwind rows of an x86-64 ELF image, sorted by pc, without overlaps:
 * .eh_frame first, .debug_frame for ranges .eh_frame leaves out, and
 * "rsp + 8" rows for PLT sections (.plt.sec, .plt.got) that have no CFI.
 * Every gap between covered ranges starts with a SYM_CFA_NONE row. On
 * success *@rows is a new array the caller frees (free()). @st may be NULL.
 * Returns 0, -ENOEXEC (not ELF), -EOPNOTSUPP (not x86-64), -ENODATA (no CFI).
 */
int sym_unwind_rows_from_elf(struct Elf *elf, struct sym_unwind_row **rows, size_t *nrows,
			     struct sym_unwind_stats *st);
/* The same for a dso's file (its own .eh_frame; separate debug files are not read). */
int sym_dso__unwind_rows(struct sym_dso *d, struct sym_unwind_row **rows, size_t *nrows,
			 struct sym_unwind_stats *st);
/* The row covering @vaddr: the last one whose pc <= vaddr; NULL when vaddr precedes them all. */
const struct sym_unwind_row *sym_unwind_rows__find(const struct sym_unwind_row *rows, size_t n,
						   uint64_t vaddr);

/* ---- source lines (DWARF) ------------------------------------------------- */

struct sym_frame {
	const char *function; /* raw name: DW_AT_linkage_name if any, else DW_AT_name, else the
				 ELF symbol; lives as long as the dso */
	const char *file; /* source file as DWARF names it (comp dir joined), NULL if unknown */
	int line; /* 0 when unknown */
	int column; /* 0 when unknown */
};

/*
 * The source-level frames at @file_offset: inlined calls innermost first,
 * the physical (out-of-line) function last, which is pprof's order of Lines
 * in a Location. DWARF comes from the file itself or from its separate
 * debug file (see sym_dsos__set_debug_roots). At most @max frames are
 * written; returns how many (>= 1), -ENOENT when no DWARF covers the
 * address (fall back to sym_dso__resolve), -ENODATA when there is no DWARF
 * for the file at all. Never crashes on broken DWARF: it is a failure.
 */
int sym_dso__frames(struct sym_dso *d, uint64_t file_offset, struct sym_frame *out, int max);

/* True when DWARF line information was found for @d (loads it if needed). */
bool sym_dso__has_lines(struct sym_dso *d);

/*
 * Where separate debug files are looked for, in order: for each root,
 * ROOT/.build-id/xx/rest.debug, then the .gnu_debuglink name in the file's
 * directory, its .debug/ subdirectory and ROOT/<file's directory>. NULL or
 * an empty list restores the default, "/usr/lib/debug". Tests point it at a
 * temporary directory. Applies to dsos whose DWARF is loaded afterwards.
 */
void sym_dsos__set_debug_roots(struct sym_dsos *c, const char *const *roots, size_t n);

/*
 * How much memory libdw sessions may take in all, in bytes (default:
 * unlimited). A session's cost is estimated before it opens as three times
 * the uncompressed size of the file's .debug_* sections (libdw 0.188
 * decompresses them all at open and builds abbrev, CU and line tables on
 * top: libc's 10 MB of sections cost 29 MB of RSS). A file whose session
 * does not fit keeps its symbol-table names (sym_dso__frames() gives
 * -ENOBUFS) and is counted in dwarf_over_budget; the bytes come back when
 * the dso is freed. 0 turns DWARF off.
 */
void sym_dsos__set_dwarf_budget(struct sym_dsos *c, uint64_t bytes);

/* ---- JIT perf maps -------------------------------------------------------- */

/*
 * Format (tools/perf/Documentation/jit-interface.txt): one symbol per line,
 *
 *   START SIZE NAME\n
 *
 * START and SIZE in hex, with or without "0x", separated by blanks; NAME is
 * the rest of the line and may contain spaces (JVM and V8 names do).
 * Trailing blanks and a '\r' are dropped. Lines that do not parse, have an
 * empty name, are longer than SYM_PERFMAP_LINE_MAX, hold a NUL byte, have
 * SIZE 0 or wrap past 2^64 are skipped and counted.
 *
 * Which entry names an address: the one appended LAST among those covering
 * it. JITs free code and later emit new code at the same place, and only
 * ever append to the file, so the newest line is the code there now. A
 * re-emitted range thus replaces the old name wholly, and a newer entry
 * that overlaps an older one only in part takes over just the bytes they
 * share: the older keeps the rest.
 *
 * A last line without its newline is taken as still being written: it is
 * not consumed, and sym_perfmap__refresh() reads it once it is complete.
 */
struct sym_perfmap;

/* Larger files are refused with EFBIG; node writes ~100 bytes per function. */
#define SYM_PERFMAP_MAX_FILE_SIZE (64ULL << 20)
#define SYM_PERFMAP_LINE_MAX 8192

/*
 * Reads the perf map at @path. Returns the table (free with
 * sym_perfmap__free()), or NULL with errno set: from open() (ENOENT, ...),
 * ELOOP when @path's last component is a symlink (a perf map lives in the
 * world-writable /tmp, and a root agent must not follow a link planted
 * there to a secret file), EINVAL when it is not a regular file, EFBIG
 * above SYM_PERFMAP_MAX_FILE_SIZE. A file with no valid line gives an empty
 * table, not an error: the process may not have JITted anything yet.
 */
struct sym_perfmap *sym_perfmap__load(const char *path);

/*
 * The perf map of live process @pid, as sym_perfmap__load() with two more
 * rules: the file is looked for first in the process's own mount namespace,
 * as /proc/@pid/root/tmp/perf-NSPID.map, where NSPID is the pid in the
 * process's own pid namespace (last field of NSpid: in /proc/@pid/status),
 * then as /tmp/perf-@pid.map; and the file must be owned by root or by the
 * process's real or effective uid, as perf requires (else EACCES), so that
 * one user cannot name another user's samples. ENOENT when neither exists.
 */
struct sym_perfmap *sym_perfmap__load_pid(int pid);

/*
 * The path sym_perfmap__load_pid() would read, in @buf: 0 when that file
 * exists, -ENOENT when neither does (@buf then holds /tmp/perf-@pid.map),
 * -ENAMETOOLONG when @len is too small.
 */
int sym_perfmap__path(int pid, char *buf, size_t len);

void sym_perfmap__free(struct sym_perfmap *m);

/*
 * Catches up with a file that grew since it was read: only the bytes from
 * the end of the last complete line read so far are read and parsed. When
 * the path now names another file (inode or device changed) or the file
 * shrank, the table is rebuilt from the whole new file.
 *
 * Returns 1 when entries were added or the table was rebuilt, 0 when
 * nothing changed, or -errno: -ENOENT when the file is gone (the process
 * exited and removed it: keep using the table), -EFBIG when it grew past
 * SYM_PERFMAP_MAX_FILE_SIZE (the lines below the bound are added), or what
 * open() and pread() fail with. A failed rebuild leaves the old table.
 *
 * Cost: an open and fstat when nothing changed; otherwise reading the new
 * bytes plus re-sorting the whole table, O(n log n) in all entries, so call
 * it when a lookup misses or on a timer, not per sample. Pointers returned
 * by sym_perfmap__lookup() before the call are invalid after it.
 */
int sym_perfmap__refresh(struct sym_perfmap *m);

/*
 * The name of the JIT symbol covering @addr (see the rule above) and its
 * start in *@start (may be NULL). NULL when no entry covers it. The name
 * lives until the next sym_perfmap__refresh() or sym_perfmap__free().
 * O(log n).
 */
const char *sym_perfmap__lookup(const struct sym_perfmap *m, uint64_t addr, uint64_t *start);

/* Valid lines kept (including ones later shadowed by re-emitted code). */
size_t sym_perfmap__count(const struct sym_perfmap *m);
/* Lines skipped as malformed since the table was (re)built from scratch. */
size_t sym_perfmap__nbad(const struct sym_perfmap *m);
/* Heap held, in bytes: about 50 bytes per entry plus its name. */
size_t sym_perfmap__bytes(const struct sym_perfmap *m);

/* ---- vDSO ---------------------------------------------------------------- */

/*
 * The vDSO's function symbols, read from this process's own vDSO image
 * (getauxval(AT_SYSINFO_EHDR)) with libelf. Valid for every process of the
 * native ABI on this kernel; 32-bit (ia32/x32) processes map another image,
 * which a caller can tell by the [vdso] mapping size differing from
 * sym_vdso__size() rounded up to a page.
 */
struct sym_vdso;

/* NULL with errno set: ENOENT when there is no vDSO, ENOEXEC when it does not parse. */
struct sym_vdso *sym_vdso__load_self(void);
void sym_vdso__free(struct sym_vdso *v);

/* Size of the vDSO image in bytes. */
uint64_t sym_vdso__size(const struct sym_vdso *v);

/*
 * The function containing byte @offset_in_mapping of a [vdso] mapping
 * (address - mapping start), e.g. "__vdso_clock_gettime"; *@sym_off (may be
 * NULL) gets the offset of @offset_in_mapping from the symbol's start.
 * Among aliases (clock_gettime is a weak alias of __vdso_clock_gettime)
 * the global one is named. NULL when no symbol covers it. The name lives
 * as long as @v.
 */
const char *sym_vdso__resolve(const struct sym_vdso *v, uint64_t offset_in_mapping,
			      uint64_t *sym_off);

/*
 * The vDSO's unwind rows (see sym_unwind_rows_from_elf), with pc given as
 * an offset in the [vdso] mapping; NULL and *@n = 0 when it has no CFI.
 * Live as long as @v.
 */
const struct sym_unwind_row *sym_vdso__unwind_rows(const struct sym_vdso *v, size_t *n);

/* ---- demangling ---------------------------------------------------------- */

struct sym_demangler;

/* A cache of up to @max_entries demangled names (0 = 8192). */
struct sym_demangler *sym_demangler__new(size_t max_entries);
void sym_demangler__free(struct sym_demangler *d);

/*
 * The demangled form of a C++ (_Z) or Rust (_Z legacy, _R v0) symbol, with
 * parameter types; @name itself for anything else or when demangling fails.
 * The result lives until the next sym_demangler__trim(), so a caller can
 * demangle every frame of a stack and use them all.
 */
const char *sym_demangle(struct sym_demangler *d, const char *name);

/* Empties the cache if it grew past its bound. Call between batches. */
void sym_demangler__trim(struct sym_demangler *d);

void sym_demangler__stats(const struct sym_demangler *d, uint64_t *entries, uint64_t *lookups,
			  uint64_t *hits);

#endif
