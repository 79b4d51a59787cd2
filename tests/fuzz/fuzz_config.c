/*
 * fuzz_config: libFuzzer target for snapkeep's configuration file
 * (snapshot/config.c): YAML as a user might get it wrong, or worse. Runs
 * tests/fuzz/run.sh.
 *
 * Whatever the bytes: cfg_load() either loads a config that holds what
 * config.h promises (a store, at least one set, each with paths) or fails with
 * a message; never a crash, a leak or a read out of bounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memfd_create */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	struct cfg *c = NULL;
	struct err e = { 0 };
	int fd = memfd_create("fuzz.yaml", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (cfg_load(path, &c, &e) == 0) {
		if (!c->store || c->store[0] != '/' || c->nsets == 0)
			abort();	/* loaded, but not what config.h promises */
		for (size_t i = 0; i < c->nsets; i++)
			if (!c->sets[i].name || c->sets[i].paths.n == 0)
				abort();
		cfg_free(c);
	} else if (!e.msg[0]) {
		abort();	/* an error that says nothing */
	}
	close(fd);
	return 0;
}
