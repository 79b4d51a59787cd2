/*
 * replay: runs a fuzz target (fuzz_index.c, fuzz_archive.c or fuzz_config.c,
 * linked in) over the files of a directory whose names start with a prefix,
 * without libFuzzer: how `meson test` runs the inputs of tests/fuzz/regress/
 * (see its README) through the targets under the sanitizers of the build.
 *
 *	fuzz_index_replay PREFIX DIR
 *
 * Prints "ok NAME" for each; a target that finds a fault aborts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf */
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int replay(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		perror(path);
		return -1;
	}
	do {
		if (len == cap) {
			unsigned char *v = realloc(buf, cap = cap ? cap * 2 : 65536);
			if (!v) {
				fprintf(stderr, "%s: out of memory\n", path);
				fclose(f);
				free(buf);
				return -1;
			}
			buf = v;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		perror(path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct dirent **names;
	int n, count = 0, rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PREFIX DIR\n", argv[0]);
		return 2;
	}
	if ((n = scandir(argv[2], &names, NULL, alphasort)) < 0) {
		perror(argv[2]);
		return 2;
	}
	for (int i = 0; i < n; i++) {
		char *path;
		if (strncmp(names[i]->d_name, argv[1], strlen(argv[1])) == 0) {
			if (asprintf(&path, "%s/%s", argv[2], names[i]->d_name) < 0) {
				fprintf(stderr, "%s: out of memory\n", names[i]->d_name);
				rc = 2;
			} else {
				if (replay(path) < 0)
					rc = 2;
				else
					printf("ok %s\n", names[i]->d_name);
				free(path);
			}
			count++;
		}
		free(names[i]);
	}
	free(names);
	if (count == 0) {
		fprintf(stderr, "%s: no %s* in %s\n", argv[0], argv[1], argv[2]);
		return 2;
	}
	return rc;
}
