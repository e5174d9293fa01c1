/* linattn tools - small helpers shared by the command-line tools. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include "toolutil.h"

void tool_error(const char *prog, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void tool_progname(int argc, char **argv, const char *prog)
{
    if (argc > 0) argv[0] = (char *)prog;
}

int tool_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int tool_parse_backend(const char *s, linattn_backend *out)
{
    if (!strcmp(s, "auto")) *out = LINATTN_BACKEND_AUTO;
    else if (!strcmp(s, "ref")) *out = LINATTN_BACKEND_REF;
    else if (!strcmp(s, "cpu")) *out = LINATTN_BACKEND_CPU;
    else if (!strcmp(s, "opencl")) *out = LINATTN_BACKEND_OPENCL;
    else return -1;
    return 0;
}

int tool_parse_dtype(const char *s, linattn_dtype *out)
{
    for (int d = LINATTN_F32; d <= LINATTN_BF16; d++)
        if (!strcmp(s, linattn_dtype_name((linattn_dtype)d))) {
            *out = (linattn_dtype)d;
            return 0;
        }
    return -1;
}

int tool_npy_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s.npy", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Like mkdir -p: every missing directory of path p, mode 0777 & umask.
 * 0, or -1 with errno set and p cut to the part that failed. */
static int mkdirs(char *p)
{
    struct stat st;
    const size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') continue;
        if (p[i - 1] == '/') continue; /* "//" or a trailing slash */
        const char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0) {
            const int err = errno, exists = stat(p, &st) == 0;
            if (!exists || !S_ISDIR(st.st_mode)) {
                errno = exists ? ENOTDIR : err;
                return -1;
            }
        }
        p[i] = c;
    }
    return 0;
}

int tool_mkdir(const char *prog, const char *dir)
{
    char part[4096];
    if (!*dir) {
        tool_error(prog, "cannot create '': %s", strerror(ENOENT));
        return -1;
    }
    if (strlen(dir) >= sizeof part) {
        tool_error(prog, "cannot create %s: %s", dir, strerror(ENAMETOOLONG));
        return -1;
    }
    strcpy(part, dir);
    if (mkdirs(part) == 0) return 0;
    const int err = errno;
    if (strcmp(part, dir)) tool_error(prog, "cannot create %s: %s: %s", dir, part, strerror(err));
    else tool_error(prog, "cannot create %s: %s", dir, strerror(err));
    return -1;
}

/* An unused name for output i next to its final path: .NAME.npy.PID.I.K */
static int create_temp(char *tmp, size_t cap, const char *dir, const char *name, int i)
{
    for (int k = 0; k < 100; k++) {
        const int m = snprintf(tmp, cap, "%s/.%s.npy.%ld.%d.%d", dir, name, (long)getpid(), i, k);
        if (m < 0 || (size_t)m >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) return close(fd);
        if (errno != EEXIST) return -1;
    }
    return -1; /* errno is EEXIST */
}

static void remove_all(char (*paths)[4096], int n)
{
    for (int i = 0; i < n; i++) unlink(paths[i]);
}

int tool_save_outputs(const char *prog, const char *dir, const tool_output *outs, int n)
{
    char (*tmp)[4096] = calloc((size_t)(n > 0 ? n : 1), sizeof *tmp);
    char path[4096];
    struct stat st;
    int made = 0, rc = -1;
    if (!tmp) {
        tool_error(prog, "out of memory");
        return -1;
    }
    if (tool_mkdir(prog, dir)) goto done;
    /* a final name that is a directory could only fail at its rename */
    for (int i = 0; i < n; i++) {
        if (tool_npy_path(path, sizeof path, dir, outs[i].name)) {
            tool_error(prog, "%s: path too long", dir);
            goto done;
        }
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            tool_error(prog, "%s: %s", path, strerror(EISDIR));
            goto done;
        }
    }
    for (; made < n; made++) {
        const tool_output *o = &outs[made];
        if (create_temp(tmp[made], sizeof tmp[made], dir, o->name, made)) {
            tool_error(prog, "%s: cannot create %s.npy: %s", dir, o->name, strerror(errno));
            goto done;
        }
        if (linattn_npy_save_dtype(tmp[made], o->data, o->dtype, o->ndim, o->shape)) {
            tool_error(prog, "%s.npy: %s", o->name, linattn_last_error());
            made++; /* remove this one too */
            goto done;
        }
    }
    for (int i = 0; i < n; i++) {
        tool_npy_path(path, sizeof path, dir, outs[i].name);
        if (rename(tmp[i], path)) {
            tool_error(prog, "%s: %s", path, strerror(errno));
            /* take back the outputs this run already put in place */
            for (int j = 0; j < i; j++) {
                tool_npy_path(path, sizeof path, dir, outs[j].name);
                unlink(path);
            }
            remove_all(tmp + i, n - i);
            made = 0;
            goto done;
        }
    }
    made = 0;
    rc = 0;
done:
    remove_all(tmp, made);
    free(tmp);
    return rc;
}

int tool_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
