/*
 * arlib: the libarchive functions that the index builder and the foreign reader
 * call, reached through pointers that dlopen() fills on first use.
 *
 * The daemon reads its own archives without libarchive. Linking it would map
 * libarchive and what it links for every format (libxml2, ICU, libstdc++,
 * nettle ...) into every mount: about 0.5 MiB of resident memory and most of a
 * cold start. They are loaded only when a foreign archive is first read, or an
 * index is first built.
 *
 *	if (arlib_load(e) < 0)
 *		return -1;
 *	struct archive *a = AR(archive_read_new)();
 *
 * Modules that only snapkeep uses (writer, extract, verify) call libarchive
 * directly; the pointers then lead to the same, already loaded, library.
 * decode, which the scan uses too, calls it through the pointers.
 */
#ifndef SNAPFS_ARLIB_H
#define SNAPFS_ARLIB_H

#include <locale.h>
#include <stdbool.h>

#include <archive.h>
#include <archive_entry.h>

#include "err.h"

#define ARLIB_FUNCS(X)                                                                         \
	X(archive_entry_acl_next)                                                              \
	X(archive_entry_acl_reset)                                                             \
	X(archive_entry_gid)                                                                   \
	X(archive_entry_gname)                                                                 \
	X(archive_entry_hardlink)                                                              \
	X(archive_entry_mode)                                                                  \
	X(archive_entry_mtime)                                                                 \
	X(archive_entry_mtime_nsec)                                                            \
	X(archive_entry_pathname)                                                              \
	X(archive_entry_rdev)                                                                  \
	X(archive_entry_size)                                                                  \
	X(archive_entry_sparse_next)                                                           \
	X(archive_entry_sparse_reset)                                                          \
	X(archive_entry_symlink)                                                               \
	X(archive_entry_uid)                                                                   \
	X(archive_entry_uname)                                                                 \
	X(archive_entry_xattr_next)                                                            \
	X(archive_entry_xattr_reset)                                                           \
	X(archive_error_string)                                                                \
	X(archive_filter_bytes)                                                                \
	X(archive_filter_code)                                                                 \
	X(archive_filter_count)                                                                \
	X(archive_format)                                                                      \
	X(archive_read_data)                                                                   \
	X(archive_read_data_block)                                                             \
	X(archive_read_data_skip)                                                              \
	X(archive_read_free)                                                                   \
	X(archive_read_new)                                                                    \
	X(archive_read_next_header)                                                            \
	X(archive_read_open)                                                                   \
	X(archive_read_open_fd)                                                                \
	X(archive_read_support_filter_all)                                                     \
	X(archive_read_support_format_all)                                                     \
	X(archive_set_error)

/*
 * liblz4's frame decoder, which libarchive links: decode checks lz4's
 * checksums with it (libarchive 3.6 does not). Looked up in libarchive's
 * libraries; when they lack it, lz4 is false and libarchive reads lz4 alone.
 * Neither the daemon nor snapkeep links these libraries itself.
 */
#ifdef SNAPFS_HAVE_LZ4
#include <lz4frame.h>
#define ARLIB_LZ4_FUNCS(X)                                                                     \
	X(LZ4F_createDecompressionContext)                                                     \
	X(LZ4F_decompress)                                                                     \
	X(LZ4F_freeDecompressionContext)                                                       \
	X(LZ4F_getErrorName)                                                                   \
	X(LZ4F_isError)
#else
#define ARLIB_LZ4_FUNCS(X)
#endif
/* liblzma's and libbz2's, likewise: decode checks xz's and bzip2's checks member by member */
#ifdef SNAPFS_HAVE_LZMA
#include <lzma.h>
#define ARLIB_XZ_FUNCS(X) X(lzma_code) X(lzma_end) X(lzma_stream_decoder)
#else
#define ARLIB_XZ_FUNCS(X)
#endif
#ifdef SNAPFS_HAVE_BZ2
#include <bzlib.h>
#define ARLIB_BZ2_FUNCS(X) X(BZ2_bzDecompress) X(BZ2_bzDecompressEnd) X(BZ2_bzDecompressInit)
#else
#define ARLIB_BZ2_FUNCS(X)
#endif

struct arlib {
#define ARLIB_FIELD(f) __typeof__(f) *f;
	ARLIB_FUNCS(ARLIB_FIELD)
	ARLIB_LZ4_FUNCS(ARLIB_FIELD)
	ARLIB_XZ_FUNCS(ARLIB_FIELD)
	ARLIB_BZ2_FUNCS(ARLIB_FIELD)
#undef ARLIB_FIELD
	bool lz4, xz, bz2;	/* their functions were found */
};

/* Filled by the first successful arlib_load(); read only after one returned 0. */
extern struct arlib arlib;

/*
 * Load libarchive and look up every function above, once per process (later
 * calls return the first result). 0, or -1 with e saying what to install.
 * Thread-safe.
 */
int arlib_load(struct err *e);

/*
 * The locale to read the names of the archive open on fd in, by its first
 * bytes: UTF-8 for a zip, 7z, rar, cab, lha or iso9660, whose names libarchive
 * converts to the locale's character set (in the "C" locale every name beyond
 * ASCII failed, and its member was dropped); (locale_t)0 for the rest. A tar
 * or a cpio stays in the "C" locale, where names are the bytes stored: under
 * a UTF-8 one libarchive would turn a pax name's decomposed characters into
 * composed ones ("e\u0301" into "\u00e9"), and two names into one.
 */
locale_t arlib_names_locale(int fd);

/*
 * Around the libarchive calls that read headers: the thread's locale becomes
 * names (if not 0) until arlib_names_leave() with what this returned.
 */
locale_t arlib_names_enter(locale_t names);
void arlib_names_leave(locale_t before);

/* libarchive's function f, through the loaded library. */
#define AR(f) (arlib.f)

#endif
