#include "arlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>

/*
 * Loading is tried once per process: a failure stands until the program starts
 * again. libarchive's soname has been libarchive.so.13 since 3.0 (2011); meson
 * asks for 3.6 or newer, and the static assertion keeps the two in step.
 */
#define ARLIB_SONAME "libarchive.so.13"
_Static_assert(ARCHIVE_VERSION_NUMBER >= 3000000 && ARCHIVE_VERSION_NUMBER < 4000000,
	       "libarchive 3.x has the soname " ARLIB_SONAME);

struct arlib arlib;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct err load_err;	/* code 0 once loaded */

static void load(void)
{
	void *h = dlopen(ARLIB_SONAME, RTLD_NOW | RTLD_LOCAL);
	struct arlib t = { 0 };

	if (!h) {
		err_set(&load_err, ENOENT,
			"cannot load " ARLIB_SONAME ", which reads archives not taken by snapkeep "
			"(%s); install libarchive (Debian: apt-get install libarchive13), then "
			"start the program again",
			dlerror());
		return;
	}
	/* dlsym returns void *; POSIX makes it convertible to a function pointer. */
#define ARLIB_SYM(f)                                                                           \
	if (!(t.f = (__typeof__(t.f))dlsym(h, #f))) {                                          \
		err_set(&load_err, ENOENT,                                                     \
			ARLIB_SONAME " has no %s; install libarchive 3.6 or newer", #f);       \
		dlclose(h);                                                                    \
		return;                                                                        \
	}
	ARLIB_FUNCS(ARLIB_SYM)
#undef ARLIB_SYM
	/* dlsym on h searches the libraries libarchive links, too */
#define ARLIB_OPT(flag, f) t.flag = t.flag && (t.f = (__typeof__(t.f))dlsym(h, #f));
#define ARLIB_LZ4_SYM(f) ARLIB_OPT(lz4, f)
#define ARLIB_XZ_SYM(f) ARLIB_OPT(xz, f)
#define ARLIB_BZ2_SYM(f) ARLIB_OPT(bz2, f)
#ifdef SNAPFS_HAVE_LZ4
	t.lz4 = true;
	ARLIB_LZ4_FUNCS(ARLIB_LZ4_SYM)
#endif
#ifdef SNAPFS_HAVE_LZMA
	t.xz = true;
	ARLIB_XZ_FUNCS(ARLIB_XZ_SYM)
#endif
#ifdef SNAPFS_HAVE_BZ2
	t.bz2 = true;
	ARLIB_BZ2_FUNCS(ARLIB_BZ2_SYM)
#endif
#undef ARLIB_OPT
	arlib = t;	/* the library stays loaded for the life of the process */
}

int arlib_load(struct err *e)
{
	pthread_once(&once, load);
	if (load_err.code)
		return err_set(e, load_err.code, "%s", load_err.msg);
	return 0;
}

void arlib_utf8_names(void)
{
	if (!setlocale(LC_CTYPE, "C.UTF-8"))
		setlocale(LC_CTYPE, "C.utf8");
}
