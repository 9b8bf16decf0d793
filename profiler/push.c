// SPDX-License-Identifier: MIT
/*
 * profiler/push.c — the Pyroscope pusher: a bounded queue of intervals and
 * one thread that POSTs them to URL/ingest with libcurl. See push.h.
 */
#include "push.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"

#define REPLY_MAX 512 /* bytes of the server's reply kept for the log */

/* ---- the queue: a ring of items ------------------------------------------------ */

struct prof_push_queue {
	struct prof_push_item *ring;
	size_t max, head, len;
};

struct prof_push_queue *prof_push_queue__new(size_t max)
{
	struct prof_push_queue *q = xcalloc(1, sizeof(*q));

	q->max = max ? max : 1;
	q->ring = xcalloc(q->max, sizeof(*q->ring));
	return q;
}

int prof_push_queue__put(struct prof_push_queue *q, const struct prof_push_item *it)
{
	int dropped = 0;

	if (q->len == q->max) {
		free(q->ring[q->head].body);
		q->head = (q->head + 1) % q->max;
		q->len--;
		dropped = 1;
	}
	q->ring[(q->head + q->len) % q->max] = *it;
	q->len++;
	return dropped;
}

bool prof_push_queue__take(struct prof_push_queue *q, struct prof_push_item *it)
{
	if (!q->len)
		return false;
	*it = q->ring[q->head];
	q->head = (q->head + 1) % q->max;
	q->len--;
	return true;
}

size_t prof_push_queue__len(const struct prof_push_queue *q)
{
	return q->len;
}

size_t prof_push_queue__free(struct prof_push_queue *q)
{
	struct prof_push_item it;
	size_t n = 0;

	if (!q)
		return 0;
	while (prof_push_queue__take(q, &it)) {
		free(it.body);
		n++;
	}
	free(q->ring);
	free(q);
	return n;
}

/* ---- pure helpers ----------------------------------------------------------------- */

enum prof_push_verdict prof_push_classify(int curl_code, long status)
{
	if (curl_code != CURLE_OK)
		return PROF_PUSH_RETRY; /* refused, reset, timed out, name lookup: the server may
					   come back */
	if (status >= 200 && status < 300)
		return PROF_PUSH_SENT;
	if (status == 429 || status >= 500)
		return PROF_PUSH_RETRY;
	/* 4xx: this request will never be accepted; 1xx/3xx: we follow no redirects. */
	return PROF_PUSH_PERMANENT;
}

uint64_t prof_push_backoff_ms(unsigned int attempt, unsigned int min_ms, unsigned int max_ms,
			      uint32_t rnd)
{
	uint64_t d = min_ms ? min_ms : 1;

	if (max_ms < d)
		max_ms = (unsigned int)d;
	for (unsigned int i = 1; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + rnd % (d / 2 + 1);
}

static bool is_label_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/* A byte allowed in a label value; see prof_push_check_label(). */
static bool is_label_value_char(unsigned char c)
{
	return c >= 0x20 && c != 0x7f && !strchr(",{}=\"\\", c);
}

int prof_push_check_label(const char *kv, char *why, size_t whylen)
{
	const char *eq = strchr(kv, '='), *v;
	size_t n;

	if (!eq || eq == kv) {
		snprintf(why, whylen, "want NAME=VALUE");
		return -EINVAL;
	}
	for (const char *c = kv; c < eq; c++)
		if (!is_label_name_char(*c, c == kv)) {
			snprintf(why, whylen,
				 "label names are letters, digits and '_', not starting with a "
				 "digit");
			return -EINVAL;
		}
	if (eq - kv >= 2 && kv[0] == '_' && kv[1] == '_') {
		snprintf(why, whylen, "names starting with __ are reserved by Pyroscope");
		return -EINVAL;
	}
	if (eq - kv == 12 && !strncmp(kv, "service_name", 12)) {
		snprintf(why, whylen, "use --service-name for service_name");
		return -EINVAL;
	}
	v = eq + 1;
	n = strlen(v);
	if (!n) {
		snprintf(why, whylen, "empty value");
		return -EINVAL;
	}
	if (v[0] == ' ' || v[n - 1] == ' ') {
		snprintf(why, whylen, "leading or trailing spaces in the value");
		return -EINVAL;
	}
	for (const char *c = v; *c; c++)
		if (!is_label_value_char((unsigned char)*c)) {
			snprintf(why, whylen,
				 "values may not hold control characters or any of , { } = \" \\");
			return -EINVAL;
		}
	return 0;
}

static bool is_service_char(char c)
{
	return is_label_name_char(c, false) || c == '.' || c == '-' || c == '/';
}

int prof_push_check_service_name(const char *s)
{
	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++)
		if (!is_service_char(*s))
			return -EINVAL;
	return 0;
}

/* The contents of an auth file, without its newline: see prof_push_read_auth_file(). */
static int check_auth(const char *a, size_t len, const char **why)
{
	const char *colon = memchr(a, ':', len);

	*why = NULL;
	if (!len)
		*why = "the file is empty";
	for (size_t i = 0; i < len && !*why; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f)
			*why = "control characters (only one trailing newline is removed)";
	if (*why)
		return -EINVAL;
	if (!colon && memchr(a, ' ', len))
		*why = "a bearer token has no spaces";
	else if (colon == a)
		*why = "no user name before ':'";
	else if (colon && colon == a + len - 1)
		*why = "no password after ':'";
	else if (colon && memchr(a, ' ', colon - a))
		*why = "a space in the user name";
	return *why ? -EINVAL : 0;
}

/* Overwrites the secret before the memory goes back to the allocator. */
static void wipe(struct strbuf *sb)
{
	if (sb->buf)
		explicit_bzero(sb->buf, sb->cap);
	strbuf_release(sb);
}

int prof_push_read_auth_file(const char *path, char **auth, const char **why)
{
	struct strbuf sb = STRBUF_INIT;
	int err;

	*auth = NULL;
	err = read_secret_file(path, 4096, &sb, why);
	if (err)
		return err;
	/* The newline that editors and echo leave; a Windows editor's "\r\n" is one too. */
	if (sb.len && sb.buf[sb.len - 1] == '\n') {
		sb.buf[--sb.len] = '\0';
		if (sb.len && sb.buf[sb.len - 1] == '\r')
			sb.buf[--sb.len] = '\0';
	}
	err = check_auth(sb.buf, sb.len, why);
	if (err) {
		wipe(&sb);
		return err;
	}
	*auth = strbuf_detach(&sb, NULL);
	return 0;
}

/* For the log: what kind of credentials, never what they are. */
static const char *auth_kind(const char *auth)
{
	if (!auth)
		return "";
	return strchr(auth, ':') ? ", basic auth" : ", bearer token";
}

/*
 * Hands the credentials to libcurl, which builds the Authorization header
 * and keeps its own copy. One method only, so libcurl sends it with the
 * first request instead of waiting for a 401 to pick one.
 */
static int set_auth(CURL *curl, const char *auth)
{
	const char *colon = strchr(auth, ':');
	char *user;
	CURLcode rc;

	if (!colon) {
		rc = curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
		if (!rc)
			rc = curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, auth);
		return rc ? -ENOTSUP : 0;
	}
	user = xstrndup(auth, colon - auth);
	rc = curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
	if (!rc)
		rc = curl_easy_setopt(curl, CURLOPT_USERNAME, user);
	if (!rc)
		rc = curl_easy_setopt(curl, CURLOPT_PASSWORD, colon + 1);
	free(user);
	return rc ? -ENOTSUP : 0;
}

/* dskit's tenant.ValidTenantID(), which Pyroscope applies to X-Scope-OrgID. */
static bool is_tenant_char(char c)
{
	return is_label_name_char(c, false) || (c && strchr("!-.*'()", c));
}

int prof_push_check_tenant(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n > 150 || !strcmp(s, ".") || !strcmp(s, ".."))
		return -EINVAL;
	for (; *s; s++)
		if (!is_tenant_char(*s))
			return -EINVAL;
	return 0;
}

/* Unix seconds, rounded to the nearest. */
static int64_t round_s(int64_t ns)
{
	return ns >= 0 ? (ns + 500000000) / 1000000000 : -((-ns + 500000000) / 1000000000);
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static void add_escaped(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			strbuf_addc(out, (char)c);
		else
			strbuf_addf(out, "%%%02X", c);
	}
}

void prof_push_ingest_url(const char *base, const char *name, int64_t start_ns, int64_t end_ns,
			  unsigned int sample_rate, struct strbuf *out)
{
	size_t n = strlen(base);
	int64_t from = round_s(start_ns), until = round_s(end_ns);

	while (n && base[n - 1] == '/')
		n--;
	/*
	 * Under a second long: the agent's first interval (its end is on a
	 * boundary) or its last one (its start is). Keep the aligned end and
	 * give the range one second on the other side.
	 */
	if (until <= from) {
		if (llabs(end_ns - until * 1000000000LL) <= llabs(start_ns - from * 1000000000LL))
			from = until - 1;
		else
			until = from + 1;
	}
	strbuf_add(out, base, n);
	strbuf_adds(out, "/ingest?name=");
	add_escaped(out, name);
	strbuf_addf(out, "&from=%lld&until=%lld&format=pprof&spyName=bpfprof", (long long)from,
		    (long long)until);
	if (sample_rate)
		strbuf_addf(out, "&sampleRate=%u", sample_rate);
}

/* ---- the pusher ------------------------------------------------------------------ */

struct prof_push {
	char *url; /* base URL, with credentials */
	char *url_shown; /* the same without user:password@, for logs */
	char *name; /* SERVICE{hostname=...,...} */
	unsigned int sample_rate, backoff_min_ms, backoff_max_ms, timeout_ms;
	struct prof_store *store;

	CURL *curl; /* pusher thread only */
	struct curl_slist *headers;
	pthread_t thread;
	uint64_t rng;

	pthread_mutex_t mu; /* everything below */
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct prof_push_queue *q;
	bool inflight; /* the pusher holds an item taken from q */
	bool stopping;
	uint64_t deadline_ns; /* while stopping: give up at this monotonic time */
	uint64_t abort_after_ns; /* read by the transfer callback without the lock (atomics) */
	bool overflowing, failing;
	long last_perm_status; /* last permanent failure status logged */
	struct prof_push_stats st;

	/* The cursor (push.h); pusher thread only once it runs. */
	char *cursor_path; /* NULL = none */
	char *cursor_ident; /* its first lines: version and target */
	bool cursor_failing; /* a write failed; logged once until one succeeds */
};

static uint32_t rng_next(struct prof_push *p)
{
	uint64_t x = p->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	p->rng = x;
	return (uint32_t)(x >> 16);
}

/* The '@' that ends user[:password] in "scheme://user:pass@host/...", or NULL. */
static const char *userinfo_end(const char *url)
{
	const char *hp = strstr(url, "://");
	size_t n;

	if (!hp)
		return NULL;
	hp += 3;
	n = strcspn(hp, "/?#"); /* the authority (RFC 3986, 3.2) */
	return memchr(hp, '@', n);
}

bool prof_push_url_has_credentials(const char *url)
{
	return userinfo_end(url) != NULL;
}

/* "scheme://user:pass@host/..." -> "scheme://host/..." */
static char *url_without_credentials(const char *url)
{
	const char *at = userinfo_end(url);
	struct strbuf sb = STRBUF_INIT;

	if (!at)
		return xstrdup(url);
	strbuf_add(&sb, url, strstr(url, "://") + 3 - url);
	strbuf_adds(&sb, at + 1);
	return strbuf_detach(&sb, NULL);
}

/* Replaces what @ok refuses with '_': hostnames are nearly always fine already. */
static void sanitize(char *s, bool (*ok)(char c))
{
	for (; *s; s++)
		if (!ok(*s))
			*s = '_';
}

static bool value_char_ok(char c)
{
	return is_label_value_char((unsigned char)c) && c != ' ';
}

static char *build_name(const struct prof_push_opts *o)
{
	struct strbuf sb = STRBUF_INIT;
	char host[256] = "", *service, *hostv = NULL;

	if (o->hostname)
		snprintf(host, sizeof(host), "%s", o->hostname);
	else if (gethostname(host, sizeof(host) - 1) || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (size_t i = 0; i < o->nlabels; i++)
		if (!strncmp(o->labels[i], "hostname=", 9))
			hostv = xstrdup(o->labels[i] + 9);
	if (!hostv) {
		hostv = xstrdup(host);
		sanitize(hostv, value_char_ok);
	}
	service = xstrdup(o->service_name ? o->service_name : host);
	sanitize(service, is_service_char);
	strbuf_addf(&sb, "%s{hostname=%s", service, hostv);
	for (size_t i = 0; i < o->nlabels; i++)
		if (strncmp(o->labels[i], "hostname=", 9))
			strbuf_addf(&sb, ",%s", o->labels[i]);
	strbuf_addc(&sb, '}');
	free(service);
	free(hostv);
	return strbuf_detach(&sb, NULL);
}

static size_t on_reply(char *data, size_t size, size_t n, void *ctx)
{
	struct strbuf *sb = ctx;
	size_t len = size * n;

	if (sb->len < REPLY_MAX)
		strbuf_add(sb, data, len < REPLY_MAX - sb->len ? len : REPLY_MAX - sb->len);
	return len;
}

/* Aborts a transfer still running when the flush time at exit is over. */
static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct prof_push *p = ctx;
	uint64_t after = __atomic_load_n(&p->abort_after_ns, __ATOMIC_RELAXED);

	(void)dt, (void)dn, (void)ut, (void)un;
	return after && now_mono_ns() > after;
}

/* The reply as one printable line. */
static void one_line(struct strbuf *sb)
{
	while (sb->len && (sb->buf[sb->len - 1] == '\n' || sb->buf[sb->len - 1] == '\r'))
		sb->buf[--sb->len] = '\0';
	for (size_t i = 0; i < sb->len; i++)
		if ((unsigned char)sb->buf[i] < 0x20)
			sb->buf[i] = ' ';
}

/*
 * One attempt at @it. Returns the verdict; -1 when the interval is gone
 * from the store (retention took it, or it is unreadable). Sets *@status,
 * *@retry_after_ms and a one-line reason in @why.
 */
static int send_one(struct prof_push *p, const struct prof_push_item *it, long *status,
		    uint64_t *retry_after_ms, struct strbuf *why, size_t *sent_len)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT, reply = STRBUF_INIT;
	char errbuf[CURL_ERROR_SIZE] = "";
	const void *data = it->body;
	size_t len = it->len;
	curl_off_t ra = 0;
	CURLcode rc;
	int v;

	*status = 0;
	*retry_after_ms = 0;
	if (!data) {
		struct prof_profile *prof = NULL;
		int err = prof_store__query(p->store, it->start_ns, it->end_ns, NULL, &prof);

		if (!err && prof->nsamples)
			err = pprof_encode(prof, &body);
		else if (!err)
			err = -ENOENT;
		prof_profile__free(prof);
		if (err) {
			strbuf_addf(why, "reading it back from the store: %s", strerror(-err));
			strbuf_release(&body);
			return -1;
		}
		data = body.buf;
		len = body.len;
	}
	prof_push_ingest_url(p->url, p->name, it->start_ns, it->end_ns, p->sample_rate, &url);
	curl_easy_setopt(p->curl, CURLOPT_URL, url.buf);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(p->curl);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, status);
		if (curl_easy_getinfo(p->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
			*retry_after_ms = (uint64_t)ra * 1000;
		one_line(&reply);
		strbuf_addf(why, "HTTP %ld%s%s", *status, reply.len ? ": " : "",
			    reply.len ? reply.buf : "");
	} else {
		strbuf_adds(why, errbuf[0] ? errbuf : curl_easy_strerror(rc));
	}
	v = prof_push_classify(rc, *status);
	*sent_len = len;
	curl_easy_setopt(p->curl, CURLOPT_ERRORBUFFER, NULL);
	strbuf_release(&url);
	strbuf_release(&body);
	strbuf_release(&reply);
	return v;
}

/* ---- the cursor ------------------------------------------------------------------ */

#define CURSOR_VERSION "bpfprof push cursor 1\n"

/*
 * The target the cursor is for, as its first lines: URL without credentials
 * (nor trailing '/'), tenant ("-" for none) and service name. Credentials
 * and labels are left out: a rotated token or a new label is the same
 * target, and the file holds no secret.
 */
static char *cursor_ident(const struct prof_push *p, const char *tenant)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n = strlen(p->url_shown);

	while (n && p->url_shown[n - 1] == '/')
		n--;
	strbuf_adds(&sb, CURSOR_VERSION "url ");
	strbuf_add(&sb, p->url_shown, n);
	strbuf_addf(&sb, "\ntenant %s\nservice ", tenant ? tenant : "-");
	strbuf_add(&sb, p->name, strcspn(p->name, "{"));
	strbuf_addc(&sb, '\n');
	return strbuf_detach(&sb, NULL);
}

/* The version line, then a url, a tenant, a service and an end line, and nothing else. */
static bool cursor_well_formed(const char *s)
{
	static const char *const keys[] = {"url ", "tenant ", "service ", "end "};

	if (strncmp(s, CURSOR_VERSION, strlen(CURSOR_VERSION)))
		return false;
	s += strlen(CURSOR_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *nl = strchr(s, '\n');

		if (!nl || strncmp(s, keys[i], strlen(keys[i])))
			return false;
		s = nl + 1;
	}
	return !*s;
}

/*
 * The end (ns) the cursor holds, in *@end_ns. -ENOENT: no cursor; -ESRCH:
 * one for another target; -EINVAL: not a cursor (or a later version).
 */
static int cursor_read(const struct prof_push *p, int64_t *end_ns)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n = strlen(p->cursor_ident);
	int err = read_file(p->cursor_path, &sb, 4096);

	if (!err && !cursor_well_formed(sb.buf))
		err = -EINVAL;
	else if (!err && strncmp(sb.buf, p->cursor_ident, n))
		err = -ESRCH;
	if (!err) {
		const char *t = sb.buf + n;
		char *e = NULL;
		long long v = 0;

		errno = 0;
		if (!strncmp(t, "end ", 4))
			v = strtoll(t + 4, &e, 10);
		if (v <= 0 || errno || strcmp(e, "\n"))
			err = -EINVAL;
		else
			*end_ns = v;
	}
	strbuf_release(&sb);
	return err;
}

/* Replaces the cursor with one ending at @end_ns (write_file_synced). */
static int cursor_write(const struct prof_push *p, int64_t end_ns)
{
	struct strbuf sb = STRBUF_INIT;
	int err;

	strbuf_addf(&sb, "%send %lld\n", p->cursor_ident, (long long)end_ns);
	err = write_file_synced(p->cursor_path, sb.buf, sb.len, 0600);
	strbuf_release(&sb);
	return err;
}

/* After an accepted interval: the cursor moves to its end. Pusher thread only. */
static void cursor_advance(struct prof_push *p, int64_t end_ns)
{
	int err;

	if (!p->cursor_path)
		return;
	err = cursor_write(p, end_ns);
	if (err && !p->cursor_failing)
		pr_warn("push: cannot write the cursor %s: %s (until it can, a restart cannot "
			"tell what was pushed)",
			p->cursor_path, strerror(-err));
	else if (!err && p->cursor_failing)
		pr_warn("push: cursor %s written again", p->cursor_path);
	p->cursor_failing = err != 0;
}

/*
 * At start, before the thread runs: queues every stored interval that ends
 * after the cursor, oldest first; what the queue cannot hold is dropped,
 * oldest first, as an overflow would. Ending after it, rather than starting
 * at or after it: an interval's start and the end of the one before come
 * from two clock readings and may differ by microseconds either way.
 */
static void cursor_resume(struct prof_push *p, const char *tenant)
{
	int64_t from = 0, now = (int64_t)now_wall_ns();
	struct prof_store_range *r = NULL;
	size_t n = 0, skip = 0;
	int err;

	p->cursor_ident = cursor_ident(p, tenant);
	err = cursor_read(p, &from);
	if (err) {
		if (err == -ESRCH)
			pr_info("push: %s is for another target: pushing starts now",
				p->cursor_path);
		else if (err != -ENOENT)
			pr_warn("push: %s: %s: pushing starts now", p->cursor_path,
				err == -EINVAL ? "not a cursor" : strerror(-err));
		cursor_advance(p, now); /* a run killed before its first delivery resumes too */
		return;
	}
	if (from < now)
		prof_store__ranges(p->store, from, now, &r, &n);
	if (n > p->st.queue_max)
		skip = n - p->st.queue_max;
	for (size_t i = skip; i < n; i++) {
		struct prof_push_item it = {.start_ns = r[i].start_ns, .end_ns = r[i].end_ns};

		prof_push_queue__put(p->q, &it);
	}
	p->st.resumed = n - skip;
	p->st.dropped += skip;
	if (skip)
		pr_warn("push: %zu stored intervals since %lld were not pushed yet; the oldest %zu "
			"do not fit in the queue (%llu) and are dropped",
			n, (long long)(from / 1000000000), skip,
			(unsigned long long)p->st.queue_max);
	else if (n)
		pr_info("push: %zu stored intervals since %lld were not pushed yet: they go first",
			n, (long long)(from / 1000000000));
	free(r);
}

static void wait_until(struct prof_push *p, uint64_t mono_ns)
{
	struct timespec ts = {.tv_sec = (time_t)(mono_ns / 1000000000ULL),
			      .tv_nsec = (long)(mono_ns % 1000000000ULL)};

	pthread_cond_timedwait(&p->cond, &p->mu, &ts);
}

static void *push_main(void *arg)
{
	struct prof_push *p = arg;
	struct prof_push_item it = {0};
	struct strbuf why = STRBUF_INIT;
	unsigned int attempt = 0;
	uint64_t retry_at = 0;
	size_t left;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		long status;
		uint64_t ra_ms, now;
		size_t len = 0;
		int v;

		if (!p->inflight) {
			while (!p->stopping && !prof_push_queue__len(p->q))
				pthread_cond_wait(&p->cond, &p->mu);
			if (!prof_push_queue__take(p->q, &it))
				break; /* stopping, and nothing left */
			p->inflight = true;
			if (p->overflowing && prof_push_queue__len(p->q) + 1 < p->st.queue_max)
				p->overflowing = false;
		}
		/* Wait out the backoff; at exit, only while the flush time allows. */
		for (;;) {
			now = now_mono_ns();
			if (p->stopping && (now > p->deadline_ns || retry_at > p->deadline_ns))
				break;
			if (now >= retry_at)
				break;
			wait_until(p, retry_at);
		}
		if (now < retry_at || (p->stopping && now > p->deadline_ns))
			break;
		pthread_mutex_unlock(&p->mu);

		strbuf_reset(&why);
		v = send_one(p, &it, &status, &ra_ms, &why, &len);
		if (v == PROF_PUSH_SENT)
			cursor_advance(p, it.end_ns); /* file I/O: not under the lock */

		pthread_mutex_lock(&p->mu);
		p->st.last_status = status;
		if (v == PROF_PUSH_RETRY) {
			uint64_t d = prof_push_backoff_ms(++attempt, p->backoff_min_ms,
							  p->backoff_max_ms, rng_next(p));

			if (ra_ms > d)
				d = ra_ms < p->backoff_max_ms ? ra_ms : p->backoff_max_ms;
			retry_at = now_mono_ns() + d * 1000000ULL;
			p->st.retries++;
			if (!p->failing)
				pr_warn("push: %s: %s; retrying with backoff, intervals are kept "
					"(queue bound %llu)",
					p->url_shown, why.buf, (unsigned long long)p->st.queue_max);
			else
				pr_debug("push: %s: %s; retry %u in %llu ms", p->url_shown, why.buf,
					 attempt, (unsigned long long)d);
			p->failing = true;
			continue;
		}
		if (v == PROF_PUSH_SENT) {
			p->st.sent++;
			p->st.bytes_sent += len;
			p->st.last_success_ns = (int64_t)now_wall_ns();
			if (p->failing)
				pr_warn("push: %s: delivering again after %u failed attempts",
					p->url_shown, attempt);
			p->failing = false;
		} else if (v == PROF_PUSH_PERMANENT) {
			p->st.failed++;
			if (status != p->last_perm_status)
				pr_warn("push: %s refused the interval at %lld: %s (not retried; "
					"further refusals with this status are only counted)",
					p->url_shown, (long long)(it.start_ns / 1000000000),
					why.buf);
			p->last_perm_status = status;
			p->failing = false;
		} else {
			p->st.dropped++;
			pr_warn("push: interval at %lld dropped: %s",
				(long long)(it.start_ns / 1000000000), why.buf);
		}
		free(it.body);
		it.body = NULL;
		p->inflight = false;
		attempt = 0;
		retry_at = 0;
	}
	left = (p->inflight ? 1 : 0) + prof_push_queue__len(p->q);
	if (p->inflight) {
		free(it.body);
		p->inflight = false;
	}
	while (prof_push_queue__take(p->q, &it))
		free(it.body);
	if (left) {
		p->st.dropped += left;
		pr_warn("push: %zu interval(s) not delivered at exit%s", left,
			p->cursor_path ? " (still in the local store: they go out after a restart)"
			: p->store     ? " (they are still in the local store)"
				       : "");
	}
	pthread_mutex_unlock(&p->mu);
	strbuf_release(&why);
	return NULL;
}

static void push_free(struct prof_push *p)
{
	if (p->curl)
		curl_easy_cleanup(p->curl);
	curl_slist_free_all(p->headers);
	prof_push_queue__free(p->q);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->mu);
	free(p->url);
	free(p->url_shown);
	free(p->name);
	free(p->cursor_path);
	free(p->cursor_ident);
	free(p);
}

struct prof_push *prof_push__start(const struct prof_push_opts *o)
{
	struct prof_push *p;
	pthread_condattr_t ca;
	const char *w;
	char why[128];
	int err;

	if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))) {
		pr_err("push: the URL must start with http:// or https://");
		errno = EINVAL;
		return NULL;
	}
	if (o->service_name && prof_push_check_service_name(o->service_name)) {
		pr_err("push: invalid service name '%s' (letters, digits, '_', '.', '-', '/')",
		       o->service_name);
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < o->nlabels; i++)
		if (prof_push_check_label(o->labels[i], why, sizeof(why))) {
			pr_err("push: invalid label '%s': %s", o->labels[i], why);
			errno = EINVAL;
			return NULL;
		}
	if (o->tenant && prof_push_check_tenant(o->tenant)) {
		pr_err("push: invalid tenant id '%s' (1 to 150 characters: letters, digits, "
		       "! - _ . * ' ( ))",
		       o->tenant);
		errno = EINVAL;
		return NULL;
	}
	if (o->auth && prof_push_url_has_credentials(o->url)) {
		pr_err("push: credentials both in the URL and in an auth file: give them one way");
		errno = EINVAL;
		return NULL;
	}
	if (o->auth && check_auth(o->auth, strlen(o->auth), &w)) {
		pr_err("push: unusable credentials: %s", w);
		errno = EINVAL;
		return NULL;
	}
	/* Thread-safe since libcurl 7.84; we call it before our thread exists anyway. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		errno = ENOMEM;
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->url = xstrdup(o->url);
	p->url_shown = url_without_credentials(o->url);
	p->name = build_name(o);
	p->sample_rate = o->sample_rate;
	p->backoff_min_ms = o->backoff_min_ms ? o->backoff_min_ms : 1000;
	p->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	p->timeout_ms = o->timeout_ms ? o->timeout_ms : 15000;
	p->store = o->store;
	p->st.queue_max = o->queue_max ? o->queue_max
			  : o->store   ? PROF_PUSH_QUEUE_STORE
				       : PROF_PUSH_QUEUE_MEMORY;
	p->q = prof_push_queue__new(p->st.queue_max);
	p->rng = now_mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);

	p->curl = curl_easy_init();
	if (!p->curl) {
		push_free(p);
		curl_global_cleanup();
		errno = ENOMEM;
		return NULL;
	}
	p->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
	p->headers = curl_slist_append(p->headers, "Expect:"); /* no 100-continue round trip */
	if (o->tenant) {
		struct strbuf h = STRBUF_INIT;

		strbuf_addf(&h, "X-Scope-OrgID: %s", o->tenant);
		p->headers = curl_slist_append(p->headers, h.buf);
		strbuf_release(&h);
	}
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(p->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(p->curl, CURLOPT_USERAGENT, "bpfprof");
	curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L); /* we are one thread of many */
	curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
	curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
	curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(p->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, on_reply);
	curl_easy_setopt(p->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(p->curl, CURLOPT_XFERINFODATA, p);
	curl_easy_setopt(p->curl, CURLOPT_NOPROGRESS, 0L);
	if (o->auth && set_auth(p->curl, o->auth)) {
		pr_err("push: this libcurl cannot send %s auth",
		       strchr(o->auth, ':') ? "basic" : "bearer");
		push_free(p);
		curl_global_cleanup();
		errno = ENOTSUP;
		return NULL;
	}

	if (p->store && o->cursor_dir) {
		struct strbuf path = STRBUF_INIT;

		strbuf_addf(&path, "%s/%s", o->cursor_dir, PROF_PUSH_CURSOR_FILE);
		p->cursor_path = strbuf_detach(&path, NULL);
		cursor_resume(p, o->tenant);
	}

	err = pthread_create(&p->thread, NULL, push_main, p);
	if (err) {
		push_free(p);
		curl_global_cleanup();
		errno = err;
		return NULL;
	}
	pr_info("push: to %s/ingest as %s%s%s%s", p->url_shown, p->name,
		o->tenant ? ", tenant " : "", o->tenant ? o->tenant : "", auth_kind(o->auth));
	return p;
}

int prof_push__submit(struct prof_push *p, const struct prof_profile *interval, bool in_store)
{
	struct prof_push_item it = {.start_ns = interval->time_nanos,
				    .end_ns = interval->time_nanos + interval->duration_nanos};

	if (!in_store || !p->store) {
		struct strbuf sb = STRBUF_INIT;
		int err = pprof_encode(interval, &sb);

		if (err) {
			strbuf_release(&sb);
			pthread_mutex_lock(&p->mu);
			p->st.dropped++;
			pthread_mutex_unlock(&p->mu);
			pr_warn("push: encoding an interval: %s", strerror(-err));
			return err;
		}
		it.body = strbuf_detach(&sb, &it.len);
	}
	pthread_mutex_lock(&p->mu);
	if (prof_push_queue__put(p->q, &it)) {
		p->st.dropped++;
		if (!p->overflowing)
			pr_warn("push: queue full (%llu intervals): dropping the oldest until %s "
				"takes them again",
				(unsigned long long)p->st.queue_max, p->url_shown);
		p->overflowing = true;
	}
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

void prof_push__stats(struct prof_push *p, struct prof_push_stats *st)
{
	pthread_mutex_lock(&p->mu);
	*st = p->st;
	st->queued = prof_push_queue__len(p->q) + (p->inflight ? 1 : 0);
	pthread_mutex_unlock(&p->mu);
}

void prof_push__metrics(struct prof_push *p, struct strbuf *out)
{
	struct prof_push_stats st;

	prof_push__stats(p, &st);
	strbuf_addf(out,
		    "# HELP bpfprof_push_intervals_total Intervals pushed to Pyroscope, by "
		    "outcome (failed: refused with a 4xx; dropped: queue overflow, gone from "
		    "the store, or left at exit).\n"
		    "# TYPE bpfprof_push_intervals_total counter\n"
		    "bpfprof_push_intervals_total{result=\"sent\"} %llu\n"
		    "bpfprof_push_intervals_total{result=\"failed\"} %llu\n"
		    "bpfprof_push_intervals_total{result=\"dropped\"} %llu\n",
		    (unsigned long long)st.sent, (unsigned long long)st.failed,
		    (unsigned long long)st.dropped);
	strbuf_addf(out,
		    "# HELP bpfprof_push_retries_total Push attempts that failed and were "
		    "retried (5xx, 429, connection errors).\n"
		    "# TYPE bpfprof_push_retries_total counter\n"
		    "bpfprof_push_retries_total %llu\n",
		    (unsigned long long)st.retries);
	strbuf_addf(out,
		    "# HELP bpfprof_push_queue_length Intervals waiting to be pushed, the one "
		    "being sent included.\n"
		    "# TYPE bpfprof_push_queue_length gauge\n"
		    "bpfprof_push_queue_length %llu\n"
		    "# HELP bpfprof_push_queue_capacity Bound of the push queue (--push-queue).\n"
		    "# TYPE bpfprof_push_queue_capacity gauge\n"
		    "bpfprof_push_queue_capacity %llu\n",
		    (unsigned long long)st.queued, (unsigned long long)st.queue_max);
	strbuf_addf(out,
		    "# HELP bpfprof_push_resumed_intervals_total Stored intervals queued at start "
		    "because the push cursor showed the server had not accepted them.\n"
		    "# TYPE bpfprof_push_resumed_intervals_total counter\n"
		    "bpfprof_push_resumed_intervals_total %llu\n",
		    (unsigned long long)st.resumed);
	strbuf_addf(out,
		    "# HELP bpfprof_push_bytes_total Bytes of gzip pprof the server accepted.\n"
		    "# TYPE bpfprof_push_bytes_total counter\n"
		    "bpfprof_push_bytes_total %llu\n"
		    "# HELP bpfprof_push_last_success_timestamp_seconds When the server last "
		    "accepted an interval (Unix time, 0 = never).\n"
		    "# TYPE bpfprof_push_last_success_timestamp_seconds gauge\n"
		    "bpfprof_push_last_success_timestamp_seconds %.3f\n",
		    (unsigned long long)st.bytes_sent, (double)st.last_success_ns / 1e9);
}

void prof_push__status(struct prof_push *p, struct strbuf *out)
{
	struct prof_push_stats st;

	prof_push__stats(p, &st);
	strbuf_addf(out,
		    "push_sent %llu\npush_failed %llu\npush_dropped %llu\npush_retries %llu\n"
		    "push_queue %llu\npush_resumed %llu\npush_last_status %ld\n",
		    (unsigned long long)st.sent, (unsigned long long)st.failed,
		    (unsigned long long)st.dropped, (unsigned long long)st.retries,
		    (unsigned long long)st.queued, (unsigned long long)st.resumed, st.last_status);
}

void prof_push__close(struct prof_push *p, unsigned int flush_ms)
{
	uint64_t deadline;

	if (!p)
		return;
	deadline = now_mono_ns() + (uint64_t)flush_ms * 1000000ULL;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	p->deadline_ns = deadline;
	__atomic_store_n(&p->abort_after_ns, deadline, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	push_free(p);
	curl_global_cleanup();
}
