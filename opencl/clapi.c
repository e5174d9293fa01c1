/* linattn - opening the OpenCL ICD loader at run time (see clapi.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dl_iterate_phdr */
#endif
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <dlfcn.h>
#ifdef HAVE_DL_ITERATE_PHDR
#include <link.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "clapi.h"

linattn_clapi_t linattn_clapi;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[320];
static void *handle;

#ifdef HAVE_DL_ITERATE_PHDR
static int has_interp(struct dl_phdr_info *info, size_t size, void *found)
{
    (void)size;
    for (size_t i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_INTERP) {
            *(int *)found = 1;
            return 1;
        }
    return 0;
}
#endif

/* Whether the process runs without the dynamic loader (a program linked with
 * -static or -static-pie).  dlopen there maps a second libc beside the static
 * one and libOpenCL crashes in its first call, so the runtime counts as absent.
 * The test: the kernel starts ld.so only for a program whose headers carry
 * PT_INTERP, and ld.so keeps the program's headers in its list even when it
 * was run by hand ("ld.so ./prog"); a static(-pie) program has none.  The weak
 * _DYNAMIC symbol would not do: in liblinattn.so it is the library's own
 * dynamic section, and a static-pie program has one too. */
static int statically_linked(void)
{
#ifdef HAVE_DL_ITERATE_PHDR
    int interp = 0;
    dl_iterate_phdr(has_interp, &interp);
    return !interp;
#else
    return 0;
#endif
}

static void load(void)
{
    const char *lib = getenv("LINATTN_OPENCL_LIB");
    if (!lib || !*lib) lib = "libOpenCL.so.1";
    if (statically_linked()) {
        snprintf(load_error, sizeof load_error, "OpenCL runtime cannot be loaded into a "
                 "statically linked program (no dynamic loader); link dynamically to use OpenCL");
        return;
    }
    if (!(handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL))) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "OpenCL runtime %s not found (%s)", lib,
                 why ? why : "dlopen failed");
        return;
    }
    /* dlsym returns void *; the cast to a function pointer goes through memcpy
     * so that no compiler warns about object-to-function conversion. */
#define LINATTN_CL_LOAD(name, ret, args)                                                    \
    {                                                                                       \
        void *sym = dlsym(handle, #name);                                                   \
        if (!sym) {                                                                         \
            snprintf(load_error, sizeof load_error, "OpenCL runtime %s lacks %s", lib, #name); \
            return;                                                                         \
        }                                                                                   \
        memcpy(&linattn_clapi.name, &sym, sizeof sym);                                      \
    }
    LINATTN_CL_FUNCS(LINATTN_CL_LOAD)
#undef LINATTN_CL_LOAD
}

int linattn_clapi_load(void)
{
    pthread_once(&once, load);
    if (load_error[0]) return linattn_fail(LINATTN_ENODEV, "%s", load_error);
    return LINATTN_OK;
}

const char *linattn_clerr(cl_int err)
{
    switch (err) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
    E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_INVALID_VALUE) E(CL_INVALID_DEVICE) E(CL_INVALID_BINARY)
    E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX) E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION) E(CL_INVALID_WORK_GROUP_SIZE)
    E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET) E(CL_INVALID_BUFFER_SIZE)
    E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_CONTEXT)
    E(CL_PLATFORM_NOT_FOUND_KHR) E(CL_INVALID_PLATFORM) E(CL_INVALID_OPERATION)
    E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    E(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
#undef E
    default: return "unknown OpenCL error";
    }
}
