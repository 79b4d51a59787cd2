#include "fixture.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char fixture_dir[PATH_MAX];

void fixture_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(fixture_dir, sizeof(fixture_dir), "%s/snapfs-test-XXXXXX", tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(fixture_dir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

void fixture_teardown(void)
{
	if (fixture_dir[0])
		nftw(fixture_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	fixture_dir[0] = '\0';
}

const char *fixture_path(const char *name)
{
	/* one buffer per distinct name, so a returned path stays valid for the whole test */
	static char names[64][NAME_MAX + 1];
	static char paths[64][PATH_MAX + NAME_MAX + 2];
	static char dir[PATH_MAX];
	static int n;
	int i;

	if (strcmp(dir, fixture_dir) != 0) {
		snprintf(dir, sizeof(dir), "%s", fixture_dir);
		n = 0;
	}
	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return paths[i];
	ck_assert_int_lt(n, 64);
	ck_assert_uint_le(strlen(name), NAME_MAX);
	snprintf(names[n], sizeof(names[n]), "%s", name);
	snprintf(paths[n], sizeof(paths[n]), "%s/%s", fixture_dir, name);
	return paths[n++];
}

uint64_t fixture_rand(uint64_t *s)
{
	/* splitmix64: deterministic across platforms */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void fixture_fill(void *buf, size_t len, uint64_t seed, int text)
{
	static const char *const words[] = { "queue ", "status: ok\n", "id: ", "retry ",
					     "worker-7 ", "2026-02-04T02:00:00Z ", "payload " };
	unsigned char *p = buf;

	for (size_t i = 0; i < len;) {
		uint64_t r = fixture_rand(&seed);
		if (!text) {
			for (int k = 0; k < 8 && i < len; k++, r >>= 8)
				p[i++] = (unsigned char)r;
			continue;
		}
		const char *w = words[r % 7];
		for (; *w && i < len; w++)
			p[i++] = (unsigned char)*w;
		if (i < len)
			p[i++] = (unsigned char)('0' + (r >> 8) % 10);
	}
}

void fixture_write(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

unsigned char *fixture_read(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	unsigned char *buf;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* A file fixture_skip() makes: each test runs in a child process of its own. */
static char skip_mark[PATH_MAX];

void fixture_skip(const char *why)
{
	int fd = open(skip_mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	fprintf(stderr, "SKIP %s\n", why);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

int fixture_run(Suite *s)
{
	const char *tmp = getenv("TMPDIR");
	SRunner *sr = srunner_create(s);
	int failed, skipped;

	snprintf(skip_mark, sizeof(skip_mark), "%s/snapfs-test-skipped.%ld", tmp ? tmp : "/tmp",
		 (long)getpid());
	unlink(skip_mark);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	skipped = unlink(skip_mark) == 0;
	return failed ? EXIT_FAILURE : skipped ? 77 : EXIT_SUCCESS;
}
