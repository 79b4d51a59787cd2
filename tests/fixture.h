/*
 * fixture: what the unit tests share: a fresh temporary directory per test,
 * removed in teardown, deterministic pseudo-random bytes, and whole-file helpers.
 */
#ifndef SNAPFS_TEST_FIXTURE_H
#define SNAPFS_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* The current test's directory, made by fixture_setup() (a checked fixture). */
extern char fixture_dir[];

void fixture_setup(void);
void fixture_teardown(void);

/* fixture_dir + "/" + name; valid until the test ends (64 names at most). */
const char *fixture_path(const char *name);

/* Fill buf with bytes from a seeded generator; compressible if text is set. */
void fixture_fill(void *buf, size_t len, uint64_t seed, int text);

/* Write len bytes to path (0644); abort the test on failure. */
void fixture_write(const char *path, const void *buf, size_t len);

/* Read a whole file into a new buffer; *len gets its size. */
unsigned char *fixture_read(const char *path, size_t *len);

uint64_t fixture_rand(uint64_t *state);

/*
 * Part of the current test cannot run here: print "SKIP <why>" and mark the
 * run, so that fixture_run() exits 77 (meson's SKIP) if no test failed: what
 * did not run is never counted as passed. The test returns, or goes on
 * without that part.
 */
void fixture_skip(const char *why);

struct Suite;
/* Run the suite in check's default fork mode: the exit status for main(). */
int fixture_run(struct Suite *s);

#endif
