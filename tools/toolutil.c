/* linattn tools - small helpers shared by the command-line tools. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
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

int tool_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int tool_parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || fabs(v) > 3.4e38) return -1;
    *out = (float)v;
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

int tool_parse_algo(const char *s, linattn_algo *out)
{
    if (!strcmp(s, "auto")) *out = LINATTN_ALGO_AUTO;
    else if (!strcmp(s, "recurrent")) *out = LINATTN_ALGO_RECURRENT;
    else if (!strcmp(s, "chunk")) *out = LINATTN_ALGO_CHUNK;
    else return -1;
    return 0;
}

int tool_npy_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s.npy", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tool_mkdir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) return S_ISDIR(st.st_mode) ? 0 : -1;
    return mkdir(dir, 0777);
}

int tool_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int tool_save_outputs(const char *prog, const char *dir, int n, const char *const *names,
                      const float *const *data, const int *ndim, const int64_t *const *shape)
{
    char path[4096];
    if (tool_mkdir(dir)) {
        tool_error(prog, "%s: cannot create output directory", dir);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (tool_npy_path(path, sizeof path, dir, names[i]) ||
            linattn_npy_save(path, data[i], ndim[i], shape[i])) {
            tool_error(prog, "%s", linattn_last_error());
            return -1;
        }
    return 0;
}
