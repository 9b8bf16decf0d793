// SPDX-License-Identifier: MIT
#include "testutil.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../profiler/sampler.h"

extern char **environ;

const char *test_build_path(const char *rel, char *out, size_t len)
{
	const char *b = getenv("BPFPROF_BUILD");

	snprintf(out, len, "%s/%s", b && *b ? b : "build", rel);
	return out;
}

pid_t test_spawn(char *const argv[], const char *out_path, const char *err_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int err;

	posix_spawn_file_actions_init(&fa);
	if (out_path)
		posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC,
						 0644);
	if (err_path)
		posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC,
						 0644);
	err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return err ? -err : pid;
}

void test_kill(pid_t *pid)
{
	int st;

	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
	*pid = 0;
}

int test_wait(pid_t pid, int *status, int timeout_ms)
{
	uint64_t deadline = now_mono_ns() + (uint64_t)timeout_ms * 1000000ULL;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		if (now_mono_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -ETIMEDOUT;
		}
		usleep(10000);
	}
}

int test_run(char *const argv[], struct strbuf *out, struct strbuf *err, int timeout_ms)
{
	char op[] = "/tmp/bpfprof-test-out-XXXXXX", ep[] = "/tmp/bpfprof-test-err-XXXXXX";
	int ofd = mkstemp(op), efd = mkstemp(ep), status = 0, rc;
	pid_t pid;

	if (ofd < 0 || efd < 0)
		return -errno;
	close(ofd);
	close(efd);
	pid = test_spawn(argv, op, ep);
	if (pid < 0) {
		rc = pid;
		goto out;
	}
	rc = test_wait(pid, &status, timeout_ms);
	if (rc == 0)
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (out)
		read_file(op, out, 0);
	if (err)
		read_file(ep, err, 0);
out:
	unlink(op);
	unlink(ep);
	return rc;
}

static int connect_local(int port, int timeout_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int test_http_raw(int port, const void *raw, size_t len, struct strbuf *out, int timeout_ms)
{
	int fd = connect_local(port, timeout_ms);
	char buf[65536];
	ssize_t n;

	if (fd < 0)
		return fd;
	if (len && send(fd, raw, len, MSG_NOSIGNAL) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	shutdown(fd, SHUT_WR);
	strbuf_reset(out);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		strbuf_add(out, buf, n);
	close(fd);
	if (!out->buf)
		strbuf_grow(out, 0);
	return n < 0 ? -errno : 0;
}

int test_http(int port, const char *method, const char *path, struct test_http_response *r,
	      int timeout_ms)
{
	return test_http_with(port, method, path, NULL, r, timeout_ms);
}

int test_http_with(int port, const char *method, const char *path, const char *headers,
		   struct test_http_response *r, int timeout_ms)
{
	struct strbuf req = STRBUF_INIT, raw = STRBUF_INIT;
	char *hdr_end, *line, *save;
	int err;

	memset(r, 0, sizeof(*r));
	strbuf_addf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sConnection: close\r\n\r\n",
		    method, path, port, headers ? headers : "");
	err = test_http_raw(port, req.buf, req.len, &raw, timeout_ms);
	strbuf_release(&req);
	if (err)
		goto out;
	hdr_end = raw.buf ? strstr(raw.buf, "\r\n\r\n") : NULL;
	if (!hdr_end || sscanf(raw.buf, "HTTP/1.%*d %d", &r->status) != 1) {
		err = -EPROTO;
		goto out;
	}
	*hdr_end = '\0';
	strbuf_add(&r->body, hdr_end + 4, raw.len - (hdr_end + 4 - raw.buf));
	for (line = strtok_r(raw.buf, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
		if (!strncasecmp(line, "Content-Type:", 13)) {
			line += 13;
			while (*line == ' ')
				line++;
			snprintf(r->content_type, sizeof(r->content_type), "%s", line);
		} else if (!strncasecmp(line, "Content-Encoding:", 17)) {
			line += 17;
			while (*line == ' ')
				line++;
			snprintf(r->content_encoding, sizeof(r->content_encoding), "%s", line);
		}
out:
	strbuf_release(&raw);
	return err;
}

int test_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

long test_folded_parse(const char *text, struct test_folded_line **out)
{
	struct test_folded_line *lines = NULL;
	size_t cap = 0;
	long n = 0;
	const char *p = text;

	while (*p) {
		const char *eol = strchr(p, '\n'), *sp;
		struct test_folded_line *l;
		char *stack, *tok, *save;

		if (!eol)
			eol = p + strlen(p);
		for (sp = eol; sp > p && sp[-1] != ' '; sp--)
			;
		if (sp == p) {
			test_folded_free(lines, n);
			return -EINVAL;
		}
		xgrow((void **)&lines, &cap, n + 1, sizeof(*lines));
		l = &lines[n++];
		memset(l, 0, sizeof(*l));
		l->count = strtoull(sp, NULL, 10);
		stack = xstrndup(p, sp - 1 - p);
		for (tok = strtok_r(stack, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
			l->frames = xrealloc(l->frames, (l->nframes + 1) * sizeof(char *));
			l->frames[l->nframes++] = xstrdup(tok);
		}
		free(stack);
		p = *eol ? eol + 1 : eol;
	}
	*out = lines;
	return n;
}

void test_folded_free(struct test_folded_line *l, long n)
{
	for (long i = 0; i < n; i++) {
		for (size_t j = 0; j < l[i].nframes; j++)
			free(l[i].frames[j]);
		free(l[i].frames);
	}
	free(l);
}

void test_require_bpf(void)
{
	const char *ci = getenv("CI");
	bool in_ci = ci && !strcmp(ci, "true");
	char why[256];

	if (prof_check_privileges(why, sizeof(why)) == 0 &&
	    access("/sys/kernel/btf/vmlinux", R_OK) == 0)
		return;
	if (prof_check_privileges(why, sizeof(why)) == 0)
		snprintf(why, sizeof(why), "the kernel has no BTF (/sys/kernel/btf/vmlinux)");
	if (in_ci)
		cr_assert_fail("CI=true and BPF is not usable: %s", why);
	fprintf(stderr,
		"\n*** SKIPPING end-to-end test: %s. Run `sudo make test` to load the real "
		"BPF programs. ***\n\n",
		why);
	cr_skip_test("BPF not usable: %s", why);
}

char *test_tmp_dir(const char *prefix)
{
	char tmpl[128];

	snprintf(tmpl, sizeof(tmpl), "/tmp/bpfprof-%s-XXXXXX", prefix);
	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	return xstrdup(tmpl);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

void test_rm_tree(char *dir)
{
	if (dir)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}
