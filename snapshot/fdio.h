/*
 * fdio: whole reads and writes on file descriptors, retrying on EINTR and
 * short transfers. Thread-safe.
 */
#ifndef SNAPFS_FDIO_H
#define SNAPFS_FDIO_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 with errno set (ENOSPC, EIO, ...). */
int fd_write_all(int fd, const void *buf, size_t len);

/* 0, or -1 with errno set; a read past the end of the file is -1 with errno 0. */
int fd_pread_all(int fd, void *buf, size_t len, uint64_t off);

#endif
