/* linattn tools - small helpers shared by the command-line tools. */
#ifndef LINATTN_TOOLUTIL_H
#define LINATTN_TOOLUTIL_H

#include "linattn.h"

/* Print "prog: message" to stderr. */
void tool_error(const char *prog, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Call first in main: getopt's messages name argv[0] (glibc and musl; BSD
 * uses the basename), which may be a full path or a libtool wrapper's
 * lt-NAME: make it prog. */
void tool_progname(int argc, char **argv, const char *prog);
/* Strict number parsing: the whole string must be a number in range. */
int tool_parse_int(const char *s, long lo, long hi, long *out);
/* Parse auto|ref|cpu|opencl into a backend. */
int tool_parse_backend(const char *s, linattn_backend *out);
/* Parse f32|f16|bf16 into a dtype. */
int tool_parse_dtype(const char *s, linattn_dtype *out);
/* dir/name.npy into buf; returns 0 if it fits. */
int tool_npy_path(char *buf, size_t cap, const char *dir, const char *name);
/* Create a directory and its missing parents (mkdir -p, mode 0777 & umask);
 * 0, or -1 with "prog: cannot create DIR: PART: reason" printed. */
int tool_mkdir(const char *prog, const char *dir);
/* One output array of dtype, written as dir/name.npy by
 * linattn_npy_save_dtype ('<f2' for f16, '<f4' for f32 and bf16). */
typedef struct tool_output {
    const char *name;
    const void *data;
    linattn_dtype dtype;
    int ndim;
    const int64_t *shape;
} tool_output;
/* Write all n outputs or none: create dir (tool_mkdir), write each under a
 * temporary name in dir, and rename them to dir/name.npy only once every
 * write succeeded; on failure the temporaries are removed and the reason
 * printed.  0 or -1. */
int tool_save_outputs(const char *prog, const char *dir, const tool_output *outs, int n);
/* Does the file exist? */
int tool_exists(const char *path);

#endif
