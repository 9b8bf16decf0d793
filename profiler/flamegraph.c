// SPDX-License-Identifier: MIT
/*
 * profiler/flamegraph.c — an interactive SVG flame graph, after Brendan
 * Gregg's flamegraph.pl (https://www.brendangregg.com/flamegraphs.html).
 *
 * The samples are folded into a tree (all -> comm -> root frame ... leaf),
 * children sorted by name so that the picture is stable, and every node at
 * least MIN_WIDTH_PX wide becomes one <g class="f"> holding a <title>, a
 * <rect> and a <text>. The <g> also carries the node's start and width in
 * samples (data-s, data-n): the script zooms and searches with those exact
 * integers instead of re-deriving them from rounded pixels.
 */
#include <stdlib.h>
#include <string.h>

#include "encode.h"

#define DEFAULT_WIDTH 1200
#define MIN_WIDTH 200
#define PAD_X 10 /* left and right margin */
#define FRAME_H 16 /* one stack level; the rect is 1 px shorter to leave a gap */
#define FONT_PX 12
#define CHAR_W 7.08 /* average glyph width at FONT_PX: 0.59 em, as flamegraph.pl assumes */
#define MIN_WIDTH_PX 0.1 /* narrower frames are left out; their samples stay in the parent */
#define TITLE_H 36
#define SUBTITLE_H 18
#define BOTTOM_H 28

enum fg_kind {
	FG_ROOT,
	FG_COMM,
	FG_USER,
	FG_KERNEL,
};

#define FG_NAME_UNKNOWN UINT32_MAX

struct fg_node {
	uint32_t name; /* string index of the profile, or FG_NAME_UNKNOWN */
	uint32_t parent; /* node index; the root is its own parent */
	uint32_t first; /* its children are tree.children[first .. first + nchildren) */
	uint32_t nchildren;
	uint64_t total; /* samples in this frame and everything it called */
	enum fg_kind kind;
};

struct fg_tree {
	const struct prof_profile *p;
	struct fg_node *nodes;
	size_t nnodes, cap;
	/* (parent, name, kind) -> node index + 1, open addressing */
	uint32_t *slots;
	uint32_t mask;
	uint32_t *children;
};

static uint64_t node_hash(uint32_t parent, uint32_t name, enum fg_kind kind)
{
	return hash_u64((uint64_t)parent << 32 | name, kind);
}

static void tree_rehash(struct fg_tree *t, uint32_t nslots)
{
	size_t i;

	free(t->slots);
	t->slots = xcalloc(nslots, sizeof(*t->slots));
	t->mask = nslots - 1;
	for (i = 1; i < t->nnodes; i++) {
		const struct fg_node *n = &t->nodes[i];
		uint32_t pos = node_hash(n->parent, n->name, n->kind) & t->mask;

		while (t->slots[pos])
			pos = (pos + 1) & t->mask;
		t->slots[pos] = i + 1;
	}
}

/* The child of @parent called @name, created with a zero total if missing. */
static uint32_t tree_child(struct fg_tree *t, uint32_t parent, uint32_t name, enum fg_kind kind)
{
	uint32_t pos, idx;
	struct fg_node *n;

	if ((t->nnodes + 1) * 4 > ((size_t)t->mask + 1) * 3)
		tree_rehash(t, (t->mask + 1) * 2);
	pos = node_hash(parent, name, kind) & t->mask;
	while (t->slots[pos]) {
		n = &t->nodes[t->slots[pos] - 1];
		if (n->parent == parent && n->name == name && n->kind == kind)
			return t->slots[pos] - 1;
		pos = (pos + 1) & t->mask;
	}
	idx = t->nnodes++;
	xgrow((void **)&t->nodes, &t->cap, t->nnodes, sizeof(*t->nodes));
	n = &t->nodes[idx];
	n->name = name;
	n->parent = parent;
	n->first = n->nchildren = 0;
	n->total = 0;
	n->kind = kind;
	t->slots[pos] = idx + 1;
	return idx;
}

static const char *node_name(const struct fg_tree *t, const struct fg_node *n)
{
	const char *s;

	if (n->kind == FG_ROOT)
		return "all";
	if (n->name == FG_NAME_UNKNOWN)
		return "[unknown]";
	s = prof_str(t->p, n->name);
	return *s ? s : "[unknown]";
}

static int cmp_children(const void *a, const void *b, void *arg)
{
	const struct fg_tree *t = arg;
	const struct fg_node *x = &t->nodes[*(const uint32_t *)a];
	const struct fg_node *y = &t->nodes[*(const uint32_t *)b];
	int c = strcmp(node_name(t, x), node_name(t, y));

	return c ? c : (int)x->kind - (int)y->kind;
}

static void tree_build(struct fg_tree *t, const struct prof_profile *p)
{
	bool *kernel = xcalloc((size_t)p->nmappings + 1, sizeof(*kernel));
	uint32_t i, j, k, *fill;

	t->p = p;
	t->cap = 0;
	t->nodes = NULL;
	xgrow((void **)&t->nodes, &t->cap, 1, sizeof(*t->nodes));
	t->nodes[0] = (struct fg_node){.kind = FG_ROOT};
	t->nnodes = 1;
	t->slots = NULL;
	tree_rehash(t, 256);

	/* The kernel's frames get their own palette; perf names its mapping this way too. */
	for (i = 0; i < p->nmappings; i++)
		kernel[i + 1] =
			strcmp(prof_str(p, p->mappings[i].filename), "[kernel.kallsyms]") == 0;

	for (i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		uint32_t cur;

		if (!s->count)
			continue;
		t->nodes[0].total += s->count;
		cur = tree_child(t, 0, s->comm, FG_COMM);
		t->nodes[cur].total += s->count;
		/* Root first: locations are stored leaf first, lines innermost first. */
		for (j = s->nlocs; j-- > 0;) {
			uint32_t id = p->sample_locs[s->loc_start + j];
			const struct prof_location *l;
			enum fg_kind kind;

			l = id && id <= p->nlocations ? &p->locations[id - 1] : NULL;
			kind = l && l->mapping <= p->nmappings && kernel[l->mapping] ? FG_KERNEL
										     : FG_USER;
			if (!l || !l->nlines) {
				cur = tree_child(t, cur, FG_NAME_UNKNOWN, kind);
				t->nodes[cur].total += s->count;
				continue;
			}
			for (k = l->nlines; k-- > 0;) {
				uint32_t fid = p->lines[l->line_start + k].function;
				uint32_t name = fid && fid <= p->nfunctions
							? p->functions[fid - 1].name
							: FG_NAME_UNKNOWN;

				cur = tree_child(t, cur, name, kind);
				t->nodes[cur].total += s->count;
			}
		}
	}
	free(kernel);

	/* Children lists, sorted by name: counting sort by parent, then one qsort per parent. */
	t->children = xmalloc(t->nnodes * sizeof(*t->children));
	for (i = 1; i < t->nnodes; i++)
		t->nodes[t->nodes[i].parent].nchildren++;
	for (i = 0, j = 0; i < t->nnodes; i++) {
		t->nodes[i].first = j;
		j += t->nodes[i].nchildren;
	}
	fill = xcalloc(t->nnodes, sizeof(*fill));
	for (i = 1; i < t->nnodes; i++) {
		struct fg_node *parent = &t->nodes[t->nodes[i].parent];

		t->children[parent->first + fill[t->nodes[i].parent]++] = i;
	}
	free(fill);
	for (i = 0; i < t->nnodes; i++) {
		if (t->nodes[i].nchildren > 1)
			qsort_r(&t->children[t->nodes[i].first], t->nodes[i].nchildren,
				sizeof(*t->children), cmp_children, t);
	}
}

static void tree_release(struct fg_tree *t)
{
	free(t->nodes);
	free(t->slots);
	free(t->children);
}

/* ---- text ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at @s that XML 1.0 accepts, 0 if there is none. */
static size_t utf8_char_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* RFC 3629 section 4: no overlong forms, no surrogates, nothing past U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	/* XML 1.0 "Char" excludes U+FFFE and U+FFFF. */
	if (c == 0xef && s[1] == 0xbf && (s[2] == 0xbe || s[2] == 0xbf))
		return 0;
	return n;
}

/*
 * Appends @len bytes of @s as XML character data (valid in text and in
 * attribute values): markup characters become entities, and control
 * characters and bytes that are not UTF-8 become '?', because a single one
 * would make the whole document unreadable to an XML parser.
 */
static void add_xml(struct strbuf *sb, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_char_len(u + i, len - i);

		if (n > 1) {
			strbuf_add(sb, u + i, n);
			i += n;
			continue;
		}
		if (n == 0) {
			strbuf_addc(sb, '?');
			i++;
			continue;
		}
		switch (u[i]) {
		case '&':
			strbuf_adds(sb, "&amp;");
			break;
		case '<':
			strbuf_adds(sb, "&lt;");
			break;
		case '>':
			strbuf_adds(sb, "&gt;");
			break;
		case '"':
			strbuf_adds(sb, "&quot;");
			break;
		case '\'':
			strbuf_adds(sb, "&apos;");
			break;
		default:
			strbuf_addc(sb, u[i] < 0x20 || u[i] == 0x7f ? '?' : (char)u[i]);
		}
		i++;
	}
}

/*
 * The label drawn inside a frame @w pixels wide: the whole name, or its
 * start and "..", or nothing under three characters. Counts characters, not
 * bytes, and never cuts a UTF-8 sequence; the script does the same on zoom.
 */
static void add_label(struct strbuf *sb, const char *name, double w)
{
	long fit = (long)((w - 6) / CHAR_W);
	size_t len = strlen(name), i, cut = len;
	long chars = 0;

	if (fit < 3)
		return;
	for (i = 0; i < len; i++) {
		if (((unsigned char)name[i] & 0xc0) == 0x80)
			continue;
		if (chars == fit - 2)
			cut = i;
		chars++;
	}
	if (chars <= fit) {
		add_xml(sb, name, len);
		return;
	}
	add_xml(sb, name, cut);
	strbuf_adds(sb, "..");
}

/* ---- colours ------------------------------------------------------------- */

struct rgb {
	int r, g, b;
};

static struct rgb hsl(double h, double s, double l)
{
	double c = (1 - (2 * l - 1 < 0 ? 1 - 2 * l : 2 * l - 1)) * s;
	double hp = h / 60, x, r = 0, g = 0, b = 0, m;
	double f = hp - 2 * (long)(hp / 2); /* hp mod 2 */

	x = c * (1 - (f - 1 < 0 ? 1 - f : f - 1));
	if (hp < 1)
		r = c, g = x;
	else if (hp < 2)
		r = x, g = c;
	else if (hp < 3)
		g = c, b = x;
	else if (hp < 4)
		g = x, b = c;
	else if (hp < 5)
		r = x, b = c;
	else
		r = c, b = x;
	m = l - c / 2;
	return (struct rgb){(int)((r + m) * 255 + 0.5), (int)((g + m) * 255 + 0.5),
			    (int)((b + m) * 255 + 0.5)};
}

/*
 * A colour that depends only on the name and the kind of frame, so the same
 * function has the same colour in every graph: warm hues for user code,
 * blues for the kernel, violets for process names, grey for what has no name.
 */
static struct rgb node_color(const char *name, enum fg_kind kind)
{
	uint64_t h = hash_bytes(name, strlen(name), 0);
	double v1 = (double)(h & 0xffff) / 0xffff, v2 = (double)((h >> 16) & 0xffff) / 0xffff;

	if (kind == FG_ROOT)
		return (struct rgb){220, 220, 220};
	if (strcmp(name, "[unknown]") == 0)
		return (struct rgb){180, 180, 180};
	switch (kind) {
	case FG_COMM:
		return hsl(260 + 30 * v1, 0.45, 0.72 + 0.06 * v2);
	case FG_KERNEL:
		return hsl(185 + 40 * v1, 0.60, 0.60 + 0.10 * v2);
	default:
		return hsl(55 * v1, 0.85, 0.55 + 0.10 * v2);
	}
}

/* ---- layout and output --------------------------------------------------- */

struct fg_out {
	const struct fg_tree *t;
	struct strbuf *sb;
	double scale; /* pixels per sample */
	int top; /* y of the root frame when inverted: below the title and subtitle */
	int height;
	int max_depth;
	bool inverted;
};

static void measure(struct fg_out *o, uint32_t idx, int depth)
{
	const struct fg_node *n = &o->t->nodes[idx];
	uint32_t i;

	if (n->total * o->scale < MIN_WIDTH_PX)
		return;
	if (depth > o->max_depth)
		o->max_depth = depth;
	for (i = 0; i < n->nchildren; i++)
		measure(o, o->t->children[n->first + i], depth + 1);
}

static void emit(struct fg_out *o, uint32_t idx, int depth, uint64_t start)
{
	const struct fg_node *n = &o->t->nodes[idx];
	const char *name = node_name(o->t, n);
	double x = PAD_X + start * o->scale, w = n->total * o->scale;
	uint64_t root_total = o->t->nodes[0].total;
	struct rgb c;
	uint32_t i;
	int y;

	if (w < MIN_WIDTH_PX)
		return;
	y = o->inverted ? o->top + depth * FRAME_H : o->height - BOTTOM_H - (depth + 1) * FRAME_H;
	c = node_color(name, n->kind);
	strbuf_addf(o->sb, "<g class=\"f\" data-s=\"%llu\" data-n=\"%llu\"><title>",
		    (unsigned long long)start, (unsigned long long)n->total);
	add_xml(o->sb, name, strlen(name));
	strbuf_addf(o->sb,
		    " (%llu samples, %.2f%%)</title><rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
		    "height=\"%d\" rx=\"2\" fill=\"rgb(%d,%d,%d)\"/><text x=\"%.2f\" y=\"%.1f\">",
		    (unsigned long long)n->total, 100.0 * n->total / root_total, x, y, w,
		    FRAME_H - 1, c.r, c.g, c.b, x + 3, y + 11.5);
	add_label(o->sb, name, w);
	strbuf_adds(o->sb, "</text></g>\n");

	for (i = 0; i < n->nchildren; i++) {
		uint32_t child = o->t->children[n->first + i];

		emit(o, child, depth + 1, start);
		start += o->t->nodes[child].total;
	}
}

static const char fg_style[] =
	"<style type=\"text/css\">\n"
	"text { font-family: Verdana, Helvetica, sans-serif; font-size: 12px; fill: #000; }\n"
	"#title { font-size: 17px; }\n"
	"#subtitle { fill: #555; }\n"
	".f { cursor: pointer; }\n"
	".f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
	".f text { pointer-events: none; }\n"
	".btn { cursor: pointer; fill: #0645ad; }\n"
	".btn:hover { text-decoration: underline; }\n"
	".hide { display: none; }\n"
	".parent rect { opacity: 0.5; }\n"
	"</style>\n";

/*
 * The whole interactive part. Frames are laid out from their sample
 * intervals (data-s, data-n): zooming into z shows z's descendants scaled
 * to the full width, its ancestors full width and faded, and hides the rest.
 * Search counts a match only when no match encloses it, so nested matches
 * (recursion, a function calling itself through others) are not counted twice.
 */
static const char fg_script[] =
	"\tvar doc = document, frames = [], total = 0, cur = '';\n"
	"\tvar reset = doc.getElementById('reset'), find = doc.getElementById('search');\n"
	"\tvar matched = doc.getElementById('matched'), details = doc.getElementById('details');\n"
	"\tvar gs = doc.querySelectorAll('g.f');\n"
	"\tfor (var i = 0; i < gs.length; i++) {\n"
	"\t\tvar g = gs[i], r = g.querySelector('rect');\n"
	"\t\tvar ti = g.querySelector('title').textContent;\n"
	"\t\tg.fg = { g: g, r: r, t: g.querySelector('text'), s: +g.getAttribute('data-s'),\n"
	"\t\t\tn: +g.getAttribute('data-n'), y: +r.getAttribute('y'),\n"
	"\t\t\tfill: r.getAttribute('fill'),\n"
	"\t\t\tname: ti.substring(0, ti.lastIndexOf(' (')) };\n"
	"\t\tframes.push(g.fg);\n"
	"\t}\n"
	"\tif (frames.length)\n"
	"\t\ttotal = frames[0].n;\n"
	"\tfunction place(f, x, w) {\n"
	"\t\tvar c = Math.floor((w - 6) / CH), s = f.name;\n"
	"\t\tf.r.setAttribute('x', x.toFixed(2));\n"
	"\t\tf.r.setAttribute('width', w.toFixed(2));\n"
	"\t\tf.t.setAttribute('x', (x + 3).toFixed(2));\n"
	"\t\tf.t.textContent = c < 3 ? '' : s.length <= c ? s : s.substring(0, c - 2) + '..';\n"
	"\t}\n"
	"\tfunction zoom(z) {\n"
	"\t\tvar k = (W - 2 * PAD) / z.n;\n"
	"\t\tframes.forEach(function (f) {\n"
	"\t\t\tvar nearer = INV ? f.y < z.y : f.y > z.y;\n"
	"\t\t\tf.g.classList.remove('hide', 'parent');\n"
	"\t\t\tif (nearer && f.s <= z.s && f.s + f.n >= z.s + z.n) {\n"
	"\t\t\t\tf.g.classList.add('parent');\n"
	"\t\t\t\tplace(f, PAD, W - 2 * PAD);\n"
	"\t\t\t} else if (!nearer && f.s >= z.s && f.s + f.n <= z.s + z.n) {\n"
	"\t\t\t\tplace(f, PAD + (f.s - z.s) * k, f.n * k);\n"
	"\t\t\t} else {\n"
	"\t\t\t\tf.g.classList.add('hide');\n"
	"\t\t\t}\n"
	"\t\t});\n"
	"\t\treset.classList.toggle('hide', z === frames[0]);\n"
	"\t}\n"
	"\tfunction search(q) {\n"
	"\t\tvar re = null, hits = [], sum = 0, end = -1;\n"
	"\t\tcur = q || '';\n"
	"\t\tif (cur) {\n"
	"\t\t\ttry {\n"
	"\t\t\t\tre = new RegExp(cur);\n"
	"\t\t\t} catch (e) {\n"
	"\t\t\t\tmatched.textContent = 'Invalid regex: ' + cur;\n"
	"\t\t\t\treturn;\n"
	"\t\t\t}\n"
	"\t\t}\n"
	"\t\tframes.forEach(function (f) {\n"
	"\t\t\tvar hit = re !== null && re.test(f.name);\n"
	"\t\t\tf.r.setAttribute('fill', hit ? 'rgb(230,0,230)' : f.fill);\n"
	"\t\t\tif (hit)\n"
	"\t\t\t\thits.push(f);\n"
	"\t\t});\n"
	"\t\thits.sort(function (a, b) { return a.s - b.s || b.n - a.n; });\n"
	"\t\thits.forEach(function (f) {\n"
	"\t\t\tif (f.s >= end) {\n"
	"\t\t\t\tsum += f.n;\n"
	"\t\t\t\tend = f.s + f.n;\n"
	"\t\t\t}\n"
	"\t\t});\n"
	"\t\tvar pct = total ? 100 * sum / total : 0;\n"
	"\t\tmatched.textContent = re ? 'Matched: ' + pct.toFixed(2) + '%' : '';\n"
	"\t}\n"
	"\tdoc.documentElement.addEventListener('click', function (e) {\n"
	"\t\tvar g = e.target.closest && e.target.closest('g.f');\n"
	"\t\tif (g)\n"
	"\t\t\tzoom(g.fg);\n"
	"\t});\n"
	"\tdoc.documentElement.addEventListener('mouseover', function (e) {\n"
	"\t\tvar g = e.target.closest && e.target.closest('g.f');\n"
	"\t\tdetails.textContent = g ? g.querySelector('title').textContent : ' ';\n"
	"\t});\n"
	"\treset.addEventListener('click', function () {\n"
	"\t\tif (frames.length)\n"
	"\t\t\tzoom(frames[0]);\n"
	"\t});\n"
	"\tfind.addEventListener('click', function () {\n"
	"\t\tvar q = prompt('Search frames (regular expression; empty clears):', cur);\n"
	"\t\tif (q !== null)\n"
	"\t\t\tsearch(q);\n"
	"\t});\n"
	"\tvar q = new URLSearchParams(window.location.search).get('s');\n"
	"\tif (q)\n"
	"\t\tsearch(q);\n"
	"})();\n";

int flamegraph_encode(const struct prof_profile *p, struct strbuf *out,
		      const struct flamegraph_opts *opts)
{
	static const struct flamegraph_opts defaults = {0};
	const char *title, *subtitle;
	struct fg_tree t;
	struct fg_out o = {0};
	int width, top;

	if (!opts)
		opts = &defaults;
	title = opts->title ? opts->title : "CPU flame graph";
	subtitle = opts->subtitle;
	width = opts->width > 0 ? opts->width : DEFAULT_WIDTH;
	if (width < MIN_WIDTH)
		width = MIN_WIDTH;
	top = TITLE_H + (subtitle ? SUBTITLE_H : 0);

	tree_build(&t, p);
	o.t = &t;
	o.sb = out;
	o.inverted = opts->inverted;
	o.top = top;
	o.max_depth = -1;
	if (t.nodes[0].total) {
		o.scale = (double)(width - 2 * PAD_X) / t.nodes[0].total;
		measure(&o, 0, 0);
	}
	o.height = top + (o.max_depth + 1) * FRAME_H + BOTTOM_H;

	strbuf_addf(out,
		    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		    "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		    "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		    width, o.height, width, o.height);
	strbuf_adds(out, fg_style);
	strbuf_addf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fafaf4\"/>\n",
		    width, o.height);
	strbuf_addf(out, "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">", width / 2);
	add_xml(out, title, strlen(title));
	strbuf_adds(out, "</text>\n");
	if (subtitle) {
		strbuf_addf(out, "<text id=\"subtitle\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
			    width / 2, TITLE_H + 6);
		add_xml(out, subtitle, strlen(subtitle));
		strbuf_adds(out, "</text>\n");
	}
	strbuf_adds(out,
		    "<text id=\"reset\" class=\"btn hide\" x=\"10\" y=\"24\">Reset Zoom</text>\n");
	strbuf_addf(out,
		    "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"24\" "
		    "text-anchor=\"end\">Search</text>\n",
		    width - PAD_X);
	strbuf_addf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\" text-anchor=\"end\"></text>\n",
		    width - PAD_X, o.height - 10);
	strbuf_addf(out, "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n", PAD_X, o.height - 10);
	if (!t.nodes[0].total)
		strbuf_addf(out,
			    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">No samples</text>\n",
			    width / 2, top + 8);

	strbuf_adds(out, "<g id=\"frames\">\n");
	if (t.nodes[0].total)
		emit(&o, 0, 0, 0);
	strbuf_adds(out, "</g>\n");

	strbuf_addf(out,
		    "<script type=\"text/ecmascript\"><![CDATA[\n"
		    "(function () {\n"
		    "\tvar W = %d, PAD = %d, INV = %d, CH = %.2f;\n",
		    width, PAD_X, o.inverted ? 1 : 0, CHAR_W);
	strbuf_adds(out, fg_script);
	strbuf_adds(out, "]]></script>\n</svg>\n");
	tree_release(&t);
	return 0;
}
