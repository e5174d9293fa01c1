/* linattn - opening the OpenCL ICD loader at run time (see clapi.h). */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include <dlfcn.h>
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

static void load(void)
{
    const char *lib = getenv("LINATTN_OPENCL_LIB");
    if (!lib || !*lib) lib = "libOpenCL.so.1";
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
