/* A full or read-only disk under one directory, for tests, without mounting anything.

   Loaded with LD_PRELOAD into a `textdistill run` subprocess, it wraps the C library's file
   calls, so every writer in the process meets the fault the same way: Python, numpy, torch's
   C++ streams and safetensors' Rust alike, as on a real disk.

   FAULTY_DISK_DIR   an absolute, resolved directory; only paths under it are affected
   FAULTY_DISK_MODE  "full": writes under the directory succeed until FAULTY_DISK_BYTES bytes
                     (in total, for this process) have been written, then one short write,
                     then ENOSPC, like a disk that fills up;
                     "readonly": anything that would change the directory (opening for
                     writing, creating, renaming, removing, making directories) fails with
                     EROFS, like a file system mounted read-only.

   Built by tests/test_faults.py with the C compiler that builds textdistill's extension. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char root[PATH_MAX];
static size_t root_length;
static int readonly;
static long long budget = -1; /* bytes left to write under root; -1: no limit */

__attribute__((constructor)) static void configure(void) {
    const char *dir = getenv("FAULTY_DISK_DIR");
    const char *mode = getenv("FAULTY_DISK_MODE");
    const char *bytes = getenv("FAULTY_DISK_BYTES");
    if (!dir || !mode || strlen(dir) + 2 > sizeof root) return;
    snprintf(root, sizeof root, "%s/", dir);
    root_length = strlen(root);
    readonly = strcmp(mode, "readonly") == 0;
    if (strcmp(mode, "full") == 0) budget = bytes ? atoll(bytes) : 0;
}

/* Whether an absolute path, or one relative to directory fd `at`, lies under root. */
static int under_root(int at, const char *path) {
    char joined[2 * PATH_MAX], resolved[2 * PATH_MAX];
    if (!root_length || !path) return 0;
    if (path[0] == '/') {
        snprintf(joined, sizeof joined, "%s", path);
    } else {
        char link[64], base[PATH_MAX];
        ssize_t n;
        if (at == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) return 0;
            n = (ssize_t)strlen(base);
        } else {
            snprintf(link, sizeof link, "/proc/self/fd/%d", at);
            n = readlink(link, base, sizeof base - 1);
            if (n < 0) return 0;
        }
        base[n] = '\0';
        snprintf(joined, sizeof joined, "%s/%s", base, path);
    }
    /* The file may not exist yet: resolve its directory, keep its name. */
    char *slash = strrchr(joined, '/');
    if (!slash) return 0;
    *slash = '\0';
    const char *directory = joined[0] ? joined : "/";
    if (!realpath(directory, resolved)) snprintf(resolved, sizeof resolved, "%s", directory);
    /* Under root when resolved + "/" starts with root ("/disk/" holds "/disk" and "/disk/x"). */
    size_t length = strlen(resolved);
    return length + 1 >= root_length && strncmp(resolved, root, root_length - 1) == 0 &&
           (resolved[root_length - 1] == '/' || resolved[root_length - 1] == '\0');
}

static int fd_under_root(int fd) {
    char link[64], target[PATH_MAX];
    if (!root_length) return 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) return 0;
    target[n] = '\0';
    return strncmp(target, root, root_length) == 0;
}

static int refuse(int code) {
    errno = code;
    return -1;
}

/* How many of `count` bytes a write to fd may write: all, fewer (the disk fills), or none
   (-1, errno ENOSPC). */
static ssize_t allowed(int fd, size_t count) {
    if (budget < 0 || count == 0 || !fd_under_root(fd)) return (ssize_t)count;
    long long left = __atomic_load_n(&budget, __ATOMIC_SEQ_CST);
    for (;;) {
        if (left <= 0) return refuse(ENOSPC);
        long long take = (long long)count < left ? (long long)count : left;
        if (__atomic_compare_exchange_n(&budget, &left, left - take, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return (ssize_t)take;
    }
}

#define REAL(name, ...) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))(__VA_ARGS__)

ssize_t write(int fd, const void *data, size_t count) {
    ssize_t n = allowed(fd, count);
    return n < 0 ? -1 : REAL(write, fd, data, (size_t)n);
}

ssize_t pwrite(int fd, const void *data, size_t count, off_t offset) {
    ssize_t n = allowed(fd, count);
    return n < 0 ? -1 : REAL(pwrite, fd, data, (size_t)n, offset);
}

ssize_t pwrite64(int fd, const void *data, size_t count, off_t offset) {
    ssize_t n = allowed(fd, count);
    return n < 0 ? -1 : REAL(pwrite64, fd, data, (size_t)n, offset);
}

ssize_t writev(int fd, const struct iovec *parts, int n_parts) {
    size_t total = 0;
    for (int i = 0; i < n_parts; i++) total += parts[i].iov_len;
    ssize_t n = allowed(fd, total);
    if (n < 0) return -1;
    if ((size_t)n == total) return REAL(writev, fd, parts, n_parts);
    /* A short write: write the first n bytes, part by part. */
    ssize_t done = 0;
    for (int i = 0; i < n_parts && done < n; i++) {
        size_t take = parts[i].iov_len < (size_t)(n - done) ? parts[i].iov_len : (size_t)(n - done);
        ssize_t w = REAL(write, fd, parts[i].iov_base, take);
        if (w < 0) return done ? done : -1;
        done += w;
    }
    return done;
}

ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
    ssize_t n = allowed(out, count);
    return n < 0 ? -1 : REAL(sendfile, out, in, offset, (size_t)n);
}

ssize_t sendfile64(int out, int in, off_t *offset, size_t count) {
    ssize_t n = allowed(out, count);
    return n < 0 ? -1 : REAL(sendfile64, out, in, offset, (size_t)n);
}

ssize_t copy_file_range(int in, off_t *in_offset, int out, off_t *out_offset, size_t count,
                        unsigned flags) {
    ssize_t n = allowed(out, count);
    return n < 0 ? -1 : REAL(copy_file_range, in, in_offset, out, out_offset, (size_t)n, flags);
}

/* ---- read-only: every call that would change the directory ---- */
#define CHANGES (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
#define READONLY_AT(at, path) (readonly && under_root((at), (path)))

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    va_list rest;
    va_start(rest, flags);
    if (flags & (O_CREAT | O_TMPFILE)) mode = va_arg(rest, mode_t);
    va_end(rest);
    if ((flags & CHANGES) && READONLY_AT(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(open, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    mode_t mode = 0;
    va_list rest;
    va_start(rest, flags);
    if (flags & (O_CREAT | O_TMPFILE)) mode = va_arg(rest, mode_t);
    va_end(rest);
    if ((flags & CHANGES) && READONLY_AT(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(open64, path, flags, mode);
}

int openat(int at, const char *path, int flags, ...) {
    mode_t mode = 0;
    va_list rest;
    va_start(rest, flags);
    if (flags & (O_CREAT | O_TMPFILE)) mode = va_arg(rest, mode_t);
    va_end(rest);
    if ((flags & CHANGES) && READONLY_AT(at, path)) return refuse(EROFS);
    return REAL(openat, at, path, flags, mode);
}

int openat64(int at, const char *path, int flags, ...) {
    mode_t mode = 0;
    va_list rest;
    va_start(rest, flags);
    if (flags & (O_CREAT | O_TMPFILE)) mode = va_arg(rest, mode_t);
    va_end(rest);
    if ((flags & CHANGES) && READONLY_AT(at, path)) return refuse(EROFS);
    return REAL(openat64, at, path, flags, mode);
}

int creat(const char *path, mode_t mode) {
    if (READONLY_AT(AT_FDCWD, path)) return refuse(EROFS);
    return REAL(creat, path, mode);
}

FILE *fopen(const char *path, const char *mode) {
    if (strpbrk(mode, "wa+") && READONLY_AT(AT_FDCWD, path)) {
        errno = EROFS;
        return NULL;
    }
    return REAL(fopen, path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
    if (strpbrk(mode, "wa+") && READONLY_AT(AT_FDCWD, path)) {
        errno = EROFS;
        return NULL;
    }
    return REAL(fopen64, path, mode);
}

int mkdir(const char *path, mode_t mode) {
    return READONLY_AT(AT_FDCWD, path) ? refuse(EROFS) : REAL(mkdir, path, mode);
}

int mkdirat(int at, const char *path, mode_t mode) {
    return READONLY_AT(at, path) ? refuse(EROFS) : REAL(mkdirat, at, path, mode);
}

int rename(const char *from, const char *to) {
    return READONLY_AT(AT_FDCWD, from) || READONLY_AT(AT_FDCWD, to) ? refuse(EROFS)
                                                                    : REAL(rename, from, to);
}

int renameat(int from_at, const char *from, int to_at, const char *to) {
    return READONLY_AT(from_at, from) || READONLY_AT(to_at, to)
               ? refuse(EROFS)
               : REAL(renameat, from_at, from, to_at, to);
}

int renameat2(int from_at, const char *from, int to_at, const char *to, unsigned flags) {
    return READONLY_AT(from_at, from) || READONLY_AT(to_at, to)
               ? refuse(EROFS)
               : REAL(renameat2, from_at, from, to_at, to, flags);
}

int unlink(const char *path) {
    return READONLY_AT(AT_FDCWD, path) ? refuse(EROFS) : REAL(unlink, path);
}

int unlinkat(int at, const char *path, int flags) {
    return READONLY_AT(at, path) ? refuse(EROFS) : REAL(unlinkat, at, path, flags);
}

int rmdir(const char *path) {
    return READONLY_AT(AT_FDCWD, path) ? refuse(EROFS) : REAL(rmdir, path);
}

int link(const char *from, const char *to) {
    return READONLY_AT(AT_FDCWD, to) ? refuse(EROFS) : REAL(link, from, to);
}

int linkat(int from_at, const char *from, int to_at, const char *to, int flags) {
    return READONLY_AT(to_at, to) ? refuse(EROFS) : REAL(linkat, from_at, from, to_at, to, flags);
}

int symlink(const char *target, const char *path) {
    return READONLY_AT(AT_FDCWD, path) ? refuse(EROFS) : REAL(symlink, target, path);
}

int truncate(const char *path, off_t length) {
    return READONLY_AT(AT_FDCWD, path) ? refuse(EROFS) : REAL(truncate, path, length);
}

int utimensat(int at, const char *path, const struct timespec times[2], int flags) {
    return READONLY_AT(at, path) ? refuse(EROFS) : REAL(utimensat, at, path, times, flags);
}

int ftruncate(int fd, off_t length) {
    return readonly && fd_under_root(fd) ? refuse(EROFS) : REAL(ftruncate, fd, length);
}
