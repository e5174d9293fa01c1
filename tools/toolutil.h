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
/* Strict number parsing: the whole string must be a number in range. */
int tool_parse_int(const char *s, long lo, long hi, long *out);
int tool_parse_float(const char *s, float *out);
/* Parse auto|ref|cpu|opencl into a backend. */
int tool_parse_backend(const char *s, linattn_backend *out);
/* Parse auto|recurrent|chunk. */
int tool_parse_algo(const char *s, linattn_algo *out);
/* dir/name.npy into buf; returns 0 if it fits. */
int tool_npy_path(char *buf, size_t cap, const char *dir, const char *name);
/* Create a directory if it does not exist; 0 on success. */
int tool_mkdir(const char *dir);
/* Does the file exist? */
int tool_exists(const char *path);

/* Write n arrays as dir/<names[i]>.npy (dir created); 0, or -1 with the
 * message printed as "prog: ...". */
int tool_save_outputs(const char *prog, const char *dir, int n, const char *const *names,
                      const float *const *data, const int *ndim, const int64_t *const *shape);

#endif
