/* linattn - status codes and per-thread error messages. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char last_msg[512];

int linattn_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    return code;
}

void linattn_clear_error(void) { last_msg[0] = '\0'; }

const char *linattn_last_error(void) { return last_msg; }

const char *linattn_strerror(int status)
{
    switch (status) {
    case LINATTN_OK: return "LINATTN_OK: success";
    case LINATTN_ENULL: return "LINATTN_ENULL: required pointer is NULL";
    case LINATTN_ESHAPE: return "LINATTN_ESHAPE: wrong rank or mismatched shapes";
    case LINATTN_ESIZE: return "LINATTN_ESIZE: size is zero or negative";
    case LINATTN_EOVERFLOW: return "LINATTN_EOVERFLOW: byte count overflows size_t";
    case LINATTN_EHEADDIM: return "LINATTN_EHEADDIM: unsupported head size";
    case LINATTN_ESEQLENS: return "LINATTN_ESEQLENS: malformed cu_seqlens";
    case LINATTN_ERANGE: return "LINATTN_ERANGE: value out of range";
    case LINATTN_ENOMEM: return "LINATTN_ENOMEM: out of memory";
    case LINATTN_EUNSUPPORTED: return "LINATTN_EUNSUPPORTED: not available here";
    case LINATTN_EIO: return "LINATTN_EIO: input/output error";
    case LINATTN_EFORMAT: return "LINATTN_EFORMAT: not a float32 or float16 little-endian C-order .npy file";
    case LINATTN_EINVAL: return "LINATTN_EINVAL: invalid argument";
    case LINATTN_ENODEV: return "LINATTN_ENODEV: no OpenCL runtime or usable device";
    case LINATTN_EDEVICE: return "LINATTN_EDEVICE: OpenCL device call failed";
    default: return "LINATTN_E?: unknown status code";
    }
}

const char *linattn_version_string(void) { return PACKAGE_VERSION; }

int linattn_version(void)
{
    return LINATTN_VERSION_MAJOR * 10000 + LINATTN_VERSION_MINOR * 100 +
           LINATTN_VERSION_PATCH;
}
