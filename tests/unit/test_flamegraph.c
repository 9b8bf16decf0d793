// SPDX-License-Identifier: MIT
/*
 * Unit tests for profiler/flamegraph.c, against the known profile of
 * pprof_test_profile() (see tests/common/pprof_read.h): structure, titles,
 * geometry, colours, escaping, well-formed XML (a small checker here, and
 * xmllint when installed), and the script's zoom and search run in node
 * against a minimal DOM (skipped when node is not installed).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "profiler/encode.h"
#include "tests/common/pprof_read.h"

/* ---- a small XML well-formedness checker ------------------------------------ */

static bool xml_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == ':' || c == '.';
}

/* Checks one '&' reference at *s; advances past it. */
static bool xml_entity(const char **s)
{
	static const char *const names[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
	const char *p = *s + 1;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		if (strncmp(p, names[i], strlen(names[i])) == 0) {
			*s = p + strlen(names[i]);
			return true;
		}
	}
	if (*p++ != '#')
		return false;
	if (*p == 'x')
		p++;
	if (!xml_name_char(*p))
		return false;
	while (xml_name_char(*p))
		p++;
	if (*p != ';')
		return false;
	*s = p + 1;
	return true;
}

/* Character data: no '<' (caller stops there), valid references, no "]]>". */
static bool xml_chars(const char **s, char stop)
{
	while (**s && **s != '<' && **s != stop) {
		if (**s == '&') {
			if (!xml_entity(s))
				return false;
			continue;
		}
		if (strncmp(*s, "]]>", 3) == 0)
			return false;
		if ((unsigned char)**s < 0x20 && **s != '\n' && **s != '\t' && **s != '\r')
			return false;
		(*s)++;
	}
	return true;
}

/*
 * Well-formed XML 1.0 for the subset an SVG uses: prolog, elements with
 * matched tags, quoted unique attributes, references, comments, CDATA, and
 * exactly one root element. Writes the first problem to @why.
 */
static bool xml_well_formed(const char *doc, const char **why)
{
	const char *stack[256], *s = doc;
	size_t stack_len[256], depth = 0;
	int roots = 0;

	*why = NULL;
	if (strncmp(s, "<?xml ", 6) == 0) {
		s = strstr(s, "?>");
		if (!s)
			return *why = "unterminated prolog", false;
		s += 2;
	}
	for (;;) {
		if (!xml_chars(&s, 0))
			return *why = "bad character data", false;
		if (!*s)
			break;
		if (!depth) {
			const char *t;

			/* only whitespace outside the root, checked by xml_chars + this */
			for (t = s; t > doc && t[-1] != '>'; t--) {
				if (t[-1] != ' ' && t[-1] != '\n' && t[-1] != '\t' && t[-1] != '\r')
					return *why = "text outside the root element", false;
			}
		}
		if (strncmp(s, "<!--", 4) == 0) {
			s = strstr(s + 4, "-->");
			if (!s)
				return *why = "unterminated comment", false;
			s += 3;
		} else if (strncmp(s, "<![CDATA[", 9) == 0) {
			if (!depth)
				return *why = "CDATA outside the root", false;
			s = strstr(s + 9, "]]>");
			if (!s)
				return *why = "unterminated CDATA", false;
			s += 3;
		} else if (s[1] == '/') {
			const char *name = s + 2;
			size_t n = 0;

			while (xml_name_char(name[n]))
				n++;
			if (!depth || n != stack_len[depth - 1] ||
			    strncmp(name, stack[depth - 1], n))
				return *why = "mismatched end tag", false;
			depth--;
			s = name + n;
			while (*s == ' ' || *s == '\n')
				s++;
			if (*s++ != '>')
				return *why = "bad end tag", false;
		} else {
			const char *name = s + 1, *attrs[64];
			size_t n = 0, nattrs = 0, attr_len[64], i;

			while (xml_name_char(name[n]))
				n++;
			if (!n)
				return *why = "bad tag name", false;
			if (!depth && roots++)
				return *why = "more than one root element", false;
			s = name + n;
			for (;;) {
				const char *an;
				size_t al = 0;
				char q;

				if (*s != ' ' && *s != '\n' && *s != '\t' && *s != '/' && *s != '>')
					return *why = "missing space between attributes", false;
				while (*s == ' ' || *s == '\n' || *s == '\t')
					s++;
				if (*s == '>' || (s[0] == '/' && s[1] == '>'))
					break;
				an = s;
				while (xml_name_char(an[al]))
					al++;
				if (!al || an[al] != '=' ||
				    (an[al + 1] != '"' && an[al + 1] != '\''))
					return *why = "bad attribute", false;
				for (i = 0; i < nattrs; i++) {
					if (attr_len[i] == al && strncmp(attrs[i], an, al) == 0)
						return *why = "duplicate attribute", false;
				}
				if (nattrs < ARRAY_SIZE(attrs)) {
					attrs[nattrs] = an;
					attr_len[nattrs++] = al;
				}
				q = an[al + 1];
				s = an + al + 2;
				if (!xml_chars(&s, q) || *s != q)
					return *why = "bad attribute value", false;
				s++;
			}
			if (*s == '/') {
				s += 2;
			} else {
				if (depth == ARRAY_SIZE(stack))
					return *why = "too deep", false;
				stack[depth] = name;
				stack_len[depth++] = n;
				s++;
			}
		}
	}
	if (depth)
		return *why = "unclosed element", false;
	if (roots != 1)
		return *why = "no root element", false;
	return true;
}

static void assert_xml(const char *svg)
{
	const char *why;
	char path[] = "/tmp/bpfprof-fg-XXXXXX";
	char cmd[128];
	int fd, rc;

	cr_assert(xml_well_formed(svg, &why), "not well-formed: %s", why);
	if (system("command -v xmllint >/dev/null 2>&1") != 0) {
		cr_log_info("xmllint not installed (libxml2-utils): only the built-in check ran");
		return;
	}
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, svg, strlen(svg)), (ssize_t)strlen(svg));
	close(fd);
	snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
	rc = system(cmd);
	unlink(path);
	cr_assert_eq(rc, 0, "xmllint rejected the SVG");
}

/* ---- parsing our own output ---------------------------------------------------- */

struct frame {
	char title[256];
	unsigned long long s, n;
	double x, w;
	int y;
	int r, g, b;
	char text[256];
};

/* Parses every <g class="f"> of @svg into @f (at most @max). Returns the count. */
static size_t parse_frames(const char *svg, struct frame *f, size_t max)
{
	const char *p = svg;
	size_t n = 0;

	while ((p = strstr(p, "<g class=\"f\"")) && n < max) {
		struct frame *x = &f[n++];
		const char *t, *e;

		memset(x, 0, sizeof(*x));
		cr_assert_eq(
			sscanf(p, "<g class=\"f\" data-s=\"%llu\" data-n=\"%llu\">", &x->s, &x->n),
			2);
		t = strstr(p, "<title>") + 7;
		e = strstr(t, "</title>");
		cr_assert_lt((size_t)(e - t), sizeof(x->title));
		memcpy(x->title, t, e - t);
		t = strstr(e, "<rect ");
		cr_assert_eq(sscanf(t,
				    "<rect x=\"%lf\" y=\"%d\" width=\"%lf\" height=\"15\" rx=\"2\" "
				    "fill=\"rgb(%d,%d,%d)\"/>",
				    &x->x, &x->y, &x->w, &x->r, &x->g, &x->b),
			     6, "%.120s", t);
		t = strchr(strstr(t, "<text "), '>') + 1;
		e = strstr(t, "</text>");
		cr_assert_lt((size_t)(e - t), sizeof(x->text));
		memcpy(x->text, t, e - t);
		p = e;
	}
	return n;
}

static int svg_height(const char *svg)
{
	int w, h;

	cr_assert_eq(sscanf(strstr(svg, "<svg "),
			    "<svg version=\"1.1\" "
			    "xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
			    "height=\"%d\"",
			    &w, &h),
		     2);
	return h;
}

/* The known profile's frames in document order (pre-order, children by name). */
static const struct {
	const char *title;
	int depth;
} known[] = {
	{"all (21 samples, 100.00%)", 0},
	{"app (14 samples, 66.67%)", 1},
	{"main (14 samples, 66.67%)", 2},
	{"memcpy (2 samples, 9.52%)", 3},
	{"entry_SYSCALL_64 (2 samples, 9.52%)", 4},
	{"ksys_write (2 samples, 9.52%)", 5},
	{"std::vector&lt;int&amp;&gt;::push;back (3 samples, 14.29%)", 3},
	{"memcpy (3 samples, 14.29%)", 4},
	{"work (9 samples, 42.86%)", 3},
	{"inner_inlined (9 samples, 42.86%)", 4},
	{"db (1 samples, 4.76%)", 1},
	{"memcpy (1 samples, 4.76%)", 2},
	{"[unknown] (1 samples, 4.76%)", 3},
	{"swapper/0 (6 samples, 28.57%)", 1},
	{"do_idle (6 samples, 28.57%)", 2},
};
#define KNOWN_NR ARRAY_SIZE(known)

static char *encode_known(bool inverted, int width)
{
	struct prof_profile *p = pprof_test_profile();
	struct flamegraph_opts o = {.inverted = inverted, .width = width};
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(flamegraph_encode(p, &sb, &o), 0);
	prof_profile__free(p);
	return strbuf_detach(&sb, NULL);
}

/* ---- tests --------------------------------------------------------------------- */

Test(flamegraph, well_formed_xml)
{
	char *a = encode_known(false, 0), *b = encode_known(true, 300);

	assert_xml(a);
	assert_xml(b);
	free(a);
	free(b);
}

Test(flamegraph, the_checker_rejects_broken_xml)
{
	static const char *const bad[] = {
		"<svg><g></svg>",	 "<svg a=\"1\" a=\"2\"/>", "<svg>a & b</svg>",
		"<svg>]]></svg>",	 "<svg x=\"<\"/>",	   "<svg/><svg/>",
		"<svg><![CDATA[x</svg>", "<svg>\x01</svg>",	   "<svg a=\"1\"b=\"2\"/>",
	};
	const char *why;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		cr_assert_not(xml_well_formed(bad[i], &why), "accepted %s", bad[i]);
	cr_assert(xml_well_formed("<?xml version=\"1.0\"?>\n<svg a='1'><!-- c --><![CDATA[<&]]>"
				  "&amp;&#60;&#x3c;</svg>\n",
				  &why),
		  "%s", why);
}

Test(flamegraph, titles_counts_and_percentages)
{
	char *svg = encode_known(false, 0);
	struct frame f[32];
	size_t n, i;

	n = parse_frames(svg, f, ARRAY_SIZE(f));
	cr_assert_eq(n, KNOWN_NR);
	for (i = 0; i < n; i++)
		cr_assert_str_eq(f[i].title, known[i].title, "frame %zu", i);
	/* the name is escaped everywhere, never raw */
	cr_assert_null(strstr(svg, "<int&>"));
	free(svg);
}

static void check_geometry(bool inverted, int width)
{
	char *svg = encode_known(inverted, width);
	double scale = (double)(width - 20) / 21;
	struct frame f[32];
	int h = svg_height(svg);
	size_t n, i;

	n = parse_frames(svg, f, ARRAY_SIZE(f));
	cr_assert_eq(n, KNOWN_NR);
	for (i = 0; i < n; i++) {
		int y = inverted ? 36 + known[i].depth * 16 : h - 28 - (known[i].depth + 1) * 16;

		cr_assert_eq(f[i].y, y, "frame %zu (%s)", i, f[i].title);
		cr_assert_float_eq(f[i].x, 10 + f[i].s * scale, 0.006, "frame %zu", i);
		cr_assert_float_eq(f[i].w, f[i].n * scale, 0.006, "frame %zu", i);
	}
	/* children sit inside their parent, one level further from the root */
	cr_assert_eq(f[9].s, f[8].s); /* inner_inlined on work */
	cr_assert_eq(f[9].n, f[8].n);
	cr_assert_eq(f[13].s, 15); /* swapper/0 after app (14) and db (1) */
	free(svg);
}

Test(flamegraph, geometry_normal)
{
	check_geometry(false, 1200);
}

Test(flamegraph, geometry_inverted_icicle)
{
	check_geometry(true, 1200);
}

Test(flamegraph, geometry_custom_width)
{
	check_geometry(false, 800);
}

Test(flamegraph, text_fits_and_is_truncated_with_dots)
{
	char *svg = encode_known(false, 0);
	struct frame f[32];
	size_t n, i;

	n = parse_frames(svg, f, ARRAY_SIZE(f));
	/* 168.57 px fits 22 characters at 7.08 px: 20 of the name and ".." */
	cr_assert_str_eq(f[6].text, "std::vector&lt;int&amp;&gt;::p..");
	cr_assert_str_eq(f[12].text, "[unkn..");
	cr_assert_str_eq(f[9].text, "inner_inlined");
	for (i = 0; i < n; i++) {
		const char *t;
		size_t chars = 0;

		for (t = f[i].text; *t; t++, chars++) {
			if (*t == '&')
				t = strchr(t, ';');
		}
		cr_assert_leq(chars * 7.08, f[i].w - 6 + 1e-9, "frame %zu: %s", i, f[i].text);
	}
	free(svg);
}

Test(flamegraph, stable_colours_by_palette)
{
	char *a = encode_known(false, 0), *b = encode_known(false, 0);
	static const struct prof_line_in main_line = {"main", NULL, NULL, 0};
	const struct prof_loc_in loc = {0x1, NULL, &main_line, 1};
	const struct prof_sample_in s = {1, 1, "other", "other", &loc, 1, 1};
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;
	struct frame f[32], g[4];
	size_t i;

	cr_assert_str_eq(a, b, "two encodings of one profile differ");
	cr_assert_eq(parse_frames(a, f, ARRAY_SIZE(f)), KNOWN_NR);
	/* kernel frames are blue, user frames warm, process names violet */
	for (i = 0; i < KNOWN_NR; i++) {
		const char *t = f[i].title;

		if (!strncmp(t, "entry_SYSCALL_64", 16) || !strncmp(t, "ksys_write", 10) ||
		    !strncmp(t, "do_idle", 7))
			cr_assert(f[i].b > f[i].r + 50, "kernel frame %s", t);
		else if (!strncmp(t, "app ", 4) || !strncmp(t, "db ", 3) ||
			 !strncmp(t, "swapper", 7))
			cr_assert(f[i].b > f[i].g && f[i].r > f[i].g, "process %s", t);
		else if (!strncmp(t, "[unknown]", 9))
			cr_assert(f[i].r == 180 && f[i].g == 180 && f[i].b == 180);
		else if (i > 0)
			cr_assert(f[i].r > f[i].b + 50, "user frame %s", t);
	}
	/* one name, one colour: the three memcpy frames, and main in another graph */
	cr_assert(f[3].r == f[7].r && f[3].g == f[7].g && f[3].b == f[7].b);
	cr_assert(f[3].r == f[11].r && f[3].g == f[11].g && f[3].b == f[11].b);
	prof_profile__add_sample(p, &s);
	cr_assert_eq(flamegraph_encode(p, &sb, NULL), 0);
	cr_assert_eq(parse_frames(sb.buf, g, ARRAY_SIZE(g)), 3);
	cr_assert(g[2].r == f[2].r && g[2].g == f[2].g && g[2].b == f[2].b);
	/* and different names differ */
	cr_assert(f[2].r != f[3].r || f[2].g != f[3].g || f[2].b != f[3].b);
	strbuf_release(&sb);
	prof_profile__free(p);
	free(a);
	free(b);
}

Test(flamegraph, hostile_names_stay_well_formed)
{
	static const struct prof_line_in lines[] = {
		{"bad\xff\xfeutf8", NULL, NULL, 0},
		{"ctl\x01\x1f\x7f", NULL, NULL, 0},
		{"q\"uo'te]]>", NULL, NULL, 0},
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5", NULL, NULL, 0}, /* valid UTF-8 */
		{"\xed\xa0\x80surrogate \xef\xbf\xbe", NULL, NULL, 0},
		{"trunc\xe2\x82", NULL, NULL, 0},
	};
	struct prof_loc_in locs[ARRAY_SIZE(lines)];
	struct prof_sample_in s = {1, 1, "<comm&>", "t", locs, ARRAY_SIZE(lines), 5};
	struct flamegraph_opts o = {.title = "a < b & \"c\"", .subtitle = "host'1 ]]>"};
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lines); i++)
		locs[i] = (struct prof_loc_in){0x100 + i, NULL, &lines[i], 1};
	prof_profile__add_sample(p, &s);
	cr_assert_eq(flamegraph_encode(p, &sb, &o), 0);
	assert_xml(sb.buf);
	cr_assert(strstr(sb.buf, ">a &lt; b &amp; &quot;c&quot;</text>"));
	cr_assert(strstr(sb.buf, ">host&apos;1 ]]&gt;</text>"));
	cr_assert(strstr(sb.buf, "<title>&lt;comm&amp;&gt; (5 samples, 100.00%)</title>"));
	cr_assert(strstr(sb.buf, "<title>bad??utf8 "));
	cr_assert(strstr(sb.buf, "<title>ctl??? "));
	cr_assert(strstr(sb.buf, "<title>q&quot;uo&apos;te]]&gt; "));
	cr_assert(strstr(sb.buf, "<title>caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5 "));
	cr_assert(strstr(sb.buf, "<title>???surrogate ??? "));
	cr_assert(strstr(sb.buf, "<title>trunc?? "));
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(flamegraph, frames_under_a_tenth_of_a_pixel_are_left_out)
{
	static const struct prof_line_in big = {"big", NULL, NULL, 0};
	static const struct prof_line_in tiny = {"tiny", NULL, NULL, 0};
	const struct prof_loc_in lb = {0x1, NULL, &big, 1}, lt = {0x2, NULL, &tiny, 1};
	const struct prof_loc_in stack_tiny[] = {lt, lb};
	const struct prof_sample_in s1 = {1, 1, "x", "x", &lb, 1, 1000000};
	const struct prof_sample_in s2 = {1, 1, "x", "x", stack_tiny, 2, 1};
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;

	prof_profile__add_sample(p, &s1);
	prof_profile__add_sample(p, &s2);
	cr_assert_eq(flamegraph_encode(p, &sb, NULL), 0);
	assert_xml(sb.buf);
	cr_assert_null(strstr(sb.buf, "tiny"));
	/* its sample still counts in every ancestor */
	cr_assert(strstr(sb.buf, "<title>all (1000001 samples, 100.00%)</title>"));
	cr_assert(strstr(sb.buf, "<title>big (1000001 samples, 100.00%)</title>"));
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(flamegraph, empty_profile)
{
	struct prof_profile *p = prof_profile__new(1);
	struct strbuf sb = STRBUF_INIT;

	cr_assert_eq(flamegraph_encode(p, &sb, NULL), 0);
	assert_xml(sb.buf);
	cr_assert(strstr(sb.buf, "No samples"));
	cr_assert_null(strstr(sb.buf, "<g class=\"f\""));
	strbuf_release(&sb);
	prof_profile__free(p);
}

Test(flamegraph, interactive_parts_are_there)
{
	char *svg = encode_known(false, 0);

	cr_assert(strstr(svg, "<text id=\"reset\" class=\"btn hide\""));
	cr_assert(strstr(svg, ">Reset Zoom</text>"));
	cr_assert(strstr(svg, ">Search</text>"));
	cr_assert(strstr(svg, "<text id=\"matched\""));
	cr_assert(strstr(svg, "function zoom(z)"));
	cr_assert(strstr(svg, "function search(q)"));
	cr_assert(strstr(svg, "'Matched: '"));
	cr_assert(strstr(svg, "prompt("));
	cr_assert(strstr(svg, "URLSearchParams(window.location.search).get('s')"));
	cr_assert(strstr(svg, "<title>CPU flame graph") == NULL);
	cr_assert(strstr(svg, ">CPU flame graph</text>"));
	free(svg);
}

/* ---- the script, run in node against a minimal DOM ------------------------------ */

/*
 * Loads the SVG (argv[2]), builds just the DOM the script uses, runs it with
 * ?s=argv[3] (may be ""), then applies the operations in argv[4..]:
 * "zoom:I" clicks frame I, "reset" clicks Reset Zoom, "prompt:RE" searches
 * through the Search button. Prints the state: the matched text, whether
 * Reset Zoom is hidden, and per frame "I hide parent x width fill text".
 */
static const char node_shim[] =
	"const fs = require('fs');\n"
	"const svg = fs.readFileSync(process.argv[2], 'utf8');\n"
	"const unesc = s => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, "
	"'\"')\n"
	"  .replace(/&apos;/g, \"'\").replace(/&amp;/g, '&');\n"
	"const attrs = s => { const a = {}; for (const m of s.matchAll(/([\\w:-]+)=\"([^\"]*)\"/g))"
	" a[m[1]] = unesc(m[2]); return a; };\n"
	"function el(a, text) {\n"
	"  const cls = new Set((a.class || '').split(' ').filter(Boolean));\n"
	"  return { a, textContent: text, kids: {}, on: {},\n"
	"    getAttribute(k) { return k in this.a ? this.a[k] : null; },\n"
	"    setAttribute(k, v) { this.a[k] = String(v); },\n"
	"    classList: { add: (...c) => c.forEach(x => cls.add(x)),\n"
	"      remove: (...c) => c.forEach(x => cls.delete(x)),\n"
	"      toggle: (c, on) => on ? cls.add(c) : cls.delete(c), contains: c => cls.has(c) },\n"
	"    querySelector(s) { return this.kids[s]; },\n"
	"    addEventListener(t, f) { this.on[t] = f; } };\n"
	"}\n"
	"const byId = {};\n"
	"for (const m of svg.matchAll(/<text id=\"(\\w+)\"([^>]*)>([^<]*)<\\/text>/g))\n"
	"  byId[m[1]] = el(attrs(m[2]), unesc(m[3]));\n"
	"const frames = [];\n"
	"const re = /<g "
	"class=\"f\"([^>]*)><title>([^<]*)<\\/title><rect([^>]*)\\/><text([^>]*)>([^<]*)<\\/"
	"text><\\/g>/g;\n"
	"for (const m of svg.matchAll(re)) {\n"
	"  const g = el(attrs(m[1]));\n"
	"  g.kids = { title: el({}, unesc(m[2])), rect: el(attrs(m[3])), text: el(attrs(m[4]), "
	"unesc(m[5])) };\n"
	"  frames.push(g);\n"
	"}\n"
	"const root = el({});\n"
	"let answer = null;\n"
	"const document = { getElementById: id => byId[id], querySelectorAll: () => frames, "
	"documentElement: root };\n"
	"const window = { location: { search: process.argv[3] ? '?s=' + "
	"encodeURIComponent(process.argv[3]) : '' } };\n"
	"const prompt = () => answer;\n"
	"const script = svg.slice(svg.indexOf('<![CDATA[') + 9, svg.indexOf(']]>'));\n"
	"new Function('document', 'window', 'prompt', script)(document, window, prompt);\n"
	"for (const op of process.argv.slice(4)) {\n"
	"  const [k, v] = [op.split(':')[0], op.slice(op.indexOf(':') + 1)];\n"
	"  if (k === 'zoom') root.on.click({ target: { closest: () => frames[+v] } });\n"
	"  else if (k === 'reset') byId.reset.on.click({});\n"
	"  else if (k === 'prompt') { answer = v; byId.search.on.click({}); }\n"
	"}\n"
	"console.log('matched ' + byId.matched.textContent);\n"
	"console.log('reset ' + (byId.reset.classList.contains('hide') ? 'hidden' : 'shown'));\n"
	"frames.forEach((g, i) => { const r = g.kids.rect;\n"
	"  console.log(['frame', i, g.classList.contains('hide') ? 1 : 0, "
	"g.classList.contains('parent') ? 1 : 0,\n"
	"    r.a.x, r.a.width, r.a.fill, g.kids.text.textContent].join(' ')); });\n";

static bool have_node(void)
{
	return system("command -v node >/dev/null 2>&1") == 0;
}

/* Runs the shim on @svg with URL search @q and operations @ops; returns its stdout. */
static char *run_script(const char *svg, const char *q, const char *const *ops, size_t nops)
{
	char dir[] = "/tmp/bpfprof-fgjs-XXXXXX";
	struct strbuf cmd = STRBUF_INIT, out = STRBUF_INIT, path = STRBUF_INIT;
	size_t i;
	FILE *f;
	int rc;

	cr_assert_not_null(mkdtemp(dir));
	strbuf_addf(&path, "%s/shim.js", dir);
	cr_assert_eq(write_file(path.buf, node_shim, strlen(node_shim)), 0);
	strbuf_reset(&path);
	strbuf_addf(&path, "%s/fg.svg", dir);
	cr_assert_eq(write_file(path.buf, svg, strlen(svg)), 0);
	strbuf_addf(&cmd, "node %s/shim.js %s '%s'", dir, path.buf, q);
	for (i = 0; i < nops; i++)
		strbuf_addf(&cmd, " '%s'", ops[i]);
	strbuf_addf(&cmd, " 2>&1; rm -rf '%s'", dir);
	f = popen(cmd.buf, "r");
	cr_assert_not_null(f);
	for (;;) {
		char buf[4096];
		size_t n = fread(buf, 1, sizeof(buf), f);

		if (!n)
			break;
		strbuf_add(&out, buf, n);
	}
	rc = pclose(f);
	cr_assert_eq(rc, 0, "node failed: %s", out.buf ? out.buf : "");
	strbuf_release(&cmd);
	strbuf_release(&path);
	if (!out.buf)
		strbuf_grow(&out, 0);
	return strbuf_detach(&out, NULL);
}

static void assert_matched(const char *svg, const char *q, const char *want)
{
	char *out = run_script(svg, q, NULL, 0);
	char line[128];

	snprintf(line, sizeof(line), "matched %s\n", want);
	cr_assert(strncmp(out, line, strlen(line)) == 0, "search %s: got %s", q, out);
	free(out);
}

Test(flamegraph, script_search_counts_nested_matches_once, .timeout = 60)
{
	char *svg;

	if (!have_node())
		cr_skip_test("node is not installed");
	svg = encode_known(false, 0);
	/* memcpy: 2 + 3 + 1 of 21 */
	assert_matched(svg, "memcpy", "Matched: 28.57%");
	/* main (14) encloses work (9): 14, not 23 */
	assert_matched(svg, "main|work", "Matched: 66.67%");
	/* memcpy (2) encloses ksys_write (2): 2 + 3 + 1 */
	assert_matched(svg, "^(memcpy|ksys_write)$", "Matched: 28.57%");
	assert_matched(svg, "do_idle", "Matched: 28.57%");
	assert_matched(svg, "push;back", "Matched: 14.29%");
	assert_matched(svg, "^all$", "Matched: 100.00%");
	assert_matched(svg, "nothing-matches", "Matched: 0.00%");
	assert_matched(svg, "(", "Invalid regex: (");
	assert_matched(svg, "", "");
	free(svg);
}

Test(flamegraph, script_search_highlights_and_clears, .timeout = 60)
{
	static const char *const ops[] = {"prompt:^memcpy$"};
	static const char *const clear[] = {"prompt:^memcpy$", "prompt:"};
	char *svg, *out, *line;
	struct frame f[32];
	int highlighted = 0;

	if (!have_node())
		cr_skip_test("node is not installed");
	svg = encode_known(false, 0);
	cr_assert_eq(parse_frames(svg, f, ARRAY_SIZE(f)), KNOWN_NR);
	out = run_script(svg, "", ops, 1);
	cr_assert(strncmp(out, "matched Matched: 28.57%\n", 24) == 0, "%s", out);
	for (line = strstr(out, "frame "); line; line = strstr(line + 1, "frame ")) {
		int i;

		cr_assert_eq(sscanf(line, "frame %d", &i), 1);
		if (strstr(f[i].title, "memcpy (") == f[i].title) {
			cr_assert(strncmp(strstr(line, "rgb("), "rgb(230,0,230)", 14) == 0, "%.80s",
				  line);
			highlighted++;
		} else {
			cr_assert(strncmp(strstr(line, "rgb("), "rgb(230,0,230)", 14) != 0, "%.80s",
				  line);
		}
	}
	cr_assert_eq(highlighted, 3);
	free(out);
	out = run_script(svg, "", clear, 2);
	cr_assert(strncmp(out, "matched \n", 9) == 0, "%s", out);
	cr_assert_null(strstr(out, "rgb(230,0,230)"));
	free(out);
	free(svg);
}

static void check_zoom(bool inverted)
{
	static const char *const ops[] = {"zoom:8"}; /* work */
	static const char *const reset[] = {"zoom:8", "reset"};
	char *svg = encode_known(inverted, 0), *out, *line;
	struct frame f[32];
	int seen = 0;

	cr_assert_eq(parse_frames(svg, f, ARRAY_SIZE(f)), KNOWN_NR);
	out = run_script(svg, "", ops, 1);
	cr_assert(strstr(out, "reset shown\n"), "%s", out);
	for (line = strstr(out, "frame "); line; line = strstr(line + 1, "frame ")) {
		int i, hide, parent;
		double x, w;
		char text[64] = "";

		cr_assert_geq(sscanf(line, "frame %d %d %d %lf %lf %*s %63[^\n]", &i, &hide,
				     &parent, &x, &w, text),
			      5);
		seen++;
		if (i == 8 || i == 9) {
			/* work and inner_inlined now span the whole width, labels untruncated */
			cr_assert(!hide && !parent, "frame %d", i);
			cr_assert_float_eq(x, 10, 1e-9);
			cr_assert_float_eq(w, 1180, 1e-9);
			cr_assert_str_eq(text, i == 8 ? "work" : "inner_inlined");
		} else if (i == 0 || i == 1 || i == 2) {
			/* all, app, main: ancestors, full width and faded */
			cr_assert(!hide && parent, "frame %d", i);
			cr_assert_float_eq(w, 1180, 1e-9);
		} else {
			cr_assert(hide, "frame %d should be hidden", i);
		}
	}
	cr_assert_eq(seen, (int)KNOWN_NR);
	free(out);

	out = run_script(svg, "", reset, 2);
	cr_assert(strstr(out, "reset hidden\n"), "%s", out);
	for (line = strstr(out, "frame "); line; line = strstr(line + 1, "frame ")) {
		int i, hide, parent;
		double x, w;

		cr_assert_eq(sscanf(line, "frame %d %d %d %lf %lf", &i, &hide, &parent, &x, &w), 5);
		cr_assert(!hide && !parent, "frame %d", i);
		cr_assert_float_eq(x, f[i].x, 0.006, "frame %d", i);
		cr_assert_float_eq(w, f[i].w, 0.006, "frame %d", i);
	}
	free(out);
	free(svg);
}

Test(flamegraph, script_zoom_and_reset, .timeout = 60)
{
	if (!have_node())
		cr_skip_test("node is not installed");
	check_zoom(false);
}

Test(flamegraph, script_zoom_and_reset_inverted, .timeout = 60)
{
	if (!have_node())
		cr_skip_test("node is not installed");
	check_zoom(true);
}
