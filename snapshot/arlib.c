#include "arlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <string.h>

#include "fdio.h"

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

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;

static void make_utf8_locale(void)
{
	utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (!utf8_locale)
		utf8_locale = newlocale(LC_CTYPE_MASK, "C.utf8", (locale_t)0);
}

locale_t arlib_names_locale(int fd)
{
	unsigned char m[8] = { 0 }, iso[5] = { 0 };
	bool converted;

	if (fd_pread_all(fd, m, sizeof(m), 0) < 0 && fd_pread_all(fd, m, 6, 0) < 0)
		return (locale_t)0;
	bool zip = m[0] == 'P' && m[1] == 'K' &&
		   ((m[2] == 3 && m[3] == 4) || (m[2] == 5 && m[3] == 6) ||
		    (m[2] == 7 && m[3] == 8));
	bool lha = m[2] == '-' && m[3] == 'l' && (m[4] == 'h' || m[4] == 'z') && m[6] == '-';
	converted = zip || lha || memcmp(m, "7z\xbc\xaf\x27\x1c", 6) == 0 ||
		    memcmp(m, "Rar!\x1a\x07", 6) == 0 || memcmp(m, "MSCF", 4) == 0 ||
		    (fd_pread_all(fd, iso, sizeof(iso), 32769) == 0 &&
		     memcmp(iso, "CD001", 5) == 0);
	if (!converted)
		return (locale_t)0;
	pthread_once(&utf8_once, make_utf8_locale);
	return utf8_locale;
}

locale_t arlib_names_enter(locale_t names)
{
	return names ? uselocale(names) : (locale_t)0;
}

void arlib_names_leave(locale_t before)
{
	if (before)
		uselocale(before);
}
