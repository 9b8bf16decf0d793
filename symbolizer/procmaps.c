// SPDX-License-Identifier: MIT
/*
 * symbolizer/procmaps.c — /proc/PID/maps parsing.
 *
 * A line is (fs/proc/task_mmu.c, show_vma_header_prefix() and show_map_vma()):
 *
 *   "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " [padding spaces] [name]
 *
 * The name is the rest of the line: a path may contain spaces (the kernel
 * escapes only '\n', as "\012"), so it is not split on blanks. A file that
 * was unlinked while mapped gets " (deleted)" appended. Anonymous mappings
 * have no name at all, others a pseudo-name ("[heap]", "[vdso]",
 * "[anon:NAME]", "anon_inode:...").
 */
#include "symbolizer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* The fixed fields take < 100 bytes; the name is at most PATH_MAX plus " (deleted)". */
#define MAPS_LINE_MAX (PATH_MAX + 128)

static const char deleted_suffix[] = " (deleted)";
static const char *parse_dec(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = p;

	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

/* "rwxp": each position is its letter or '-', the last one 'p' or 's'. */
static const char *parse_perms(const char *p, uint32_t *perms)
{
	static const char letters[] = "rwx";
	static const uint32_t bits[] = {SYM_MAP_R, SYM_MAP_W, SYM_MAP_X};
	uint32_t v = 0;

	for (int i = 0; i < 3; i++) {
		if (p[i] == letters[i])
			v |= bits[i];
		else if (p[i] != '-')
			return NULL;
	}
	if (p[3] == 'p')
		v |= SYM_MAP_P;
	else if (p[3] != 's')
		return NULL;
	*perms = v;
	return p + 4;
}

/* Parses one line (without its newline) into @e; false when malformed. */
static bool parse_line(const char *line, size_t len, struct sym_map_entry *e)
{
	const char *p = line;
	uint64_t maj, min;
	size_t plen;

	if (len > MAPS_LINE_MAX || strlen(line) != len)
		return false; /* overlong, or a NUL inside */
	memset(e, 0, sizeof(*e));
	if (!(p = parse_hex_u64(p, &e->start)) || *p++ != '-')
		return false;
	if (!(p = parse_hex_u64(p, &e->end)) || *p++ != ' ' || e->start >= e->end)
		return false;
	if (!(p = parse_perms(p, &e->perms)) || *p++ != ' ')
		return false;
	if (!(p = parse_hex_u64(p, &e->pgoff)) || *p++ != ' ')
		return false;
	if (!(p = parse_hex_u64(p, &maj)) || *p++ != ':' || maj > UINT32_MAX)
		return false;
	if (!(p = parse_hex_u64(p, &min)) || min > UINT32_MAX)
		return false;
	if (*p++ != ' ')
		return false;
	if (!(p = parse_dec(p, &e->inode)))
		return false;
	if (*p && *p != ' ')
		return false;
	e->dev_major = (uint32_t)maj;
	e->dev_minor = (uint32_t)min;
	/* The column padding; a path never starts with a blank (it is absolute). */
	while (*p == ' ')
		p++;
	plen = len - (size_t)(p - line);
	if (plen > sizeof(deleted_suffix) - 1 &&
	    !memcmp(p + plen - (sizeof(deleted_suffix) - 1), deleted_suffix,
		    sizeof(deleted_suffix) - 1)) {
		plen -= sizeof(deleted_suffix) - 1;
		e->deleted = true;
	}
	e->path = xstrndup(p, plen);
	return true;
}

int sym_procmaps__parse(FILE *f, struct sym_map_entry **out, size_t *n, size_t *nbad)
{
	struct sym_map_entry *v = NULL;
	size_t nv = 0, cap = 0, bad = 0, lcap = 0;
	char *line = NULL;
	ssize_t len;
	int err = 0;

	*out = NULL;
	*n = 0;
	if (nbad)
		*nbad = 0;
	for (;;) {
		errno = 0;
		len = getline(&line, &lcap, f);
		if (len < 0) {
			err = -errno;
			break;
		}
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		xgrow((void **)&v, &cap, nv + 1, sizeof(*v));
		if (parse_line(line, (size_t)len, &v[nv]))
			nv++;
		else
			bad++;
	}
	free(line);
	if (ferror(f)) {
		sym_procmaps__free(v, nv);
		return err ? err : -EIO;
	}
	*out = v;
	*n = nv;
	if (nbad)
		*nbad = bad;
	return 0;
}

int sym_procmaps__read(int pid, struct sym_map_entry **out, size_t *n)
{
	char path[32];
	size_t nbad;
	FILE *f;
	int err;

	*out = NULL;
	*n = 0;
	if (pid <= 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	err = sym_procmaps__parse(f, out, n, &nbad);
	fclose(f);
	if (!err && nbad)
		pr_debug("procmaps '%s': %zu malformed lines skipped", path, nbad);
	return err;
}

void sym_procmaps__free(struct sym_map_entry *e, size_t n)
{
	if (!e)
		return;
	for (size_t i = 0; i < n; i++)
		free(e[i].path);
	free(e);
}
