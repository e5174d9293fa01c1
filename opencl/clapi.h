/* linattn - the OpenCL entry points, looked up at run time.
 *
 * The library does not link libOpenCL: it opens the ICD loader with dlopen
 * when a context first asks for OpenCL, so a machine without any OpenCL
 * runtime loads and runs the library (CPU only).  Every call goes through
 * the table `linattn_clapi`, filled by linattn_clapi_load(). */
#ifndef LINATTN_CLAPI_H
#define LINATTN_CLAPI_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

/* X(name, return type, (parameters)) for every function we use. */
#define LINATTN_CL_FUNCS(X)                                                                 \
    X(clGetPlatformIDs, cl_int, (cl_uint, cl_platform_id *, cl_uint *))                     \
    X(clGetPlatformInfo, cl_int, (cl_platform_id, cl_platform_info, size_t, void *, size_t *)) \
    X(clGetDeviceIDs, cl_int, (cl_platform_id, cl_device_type, cl_uint, cl_device_id *, cl_uint *)) \
    X(clGetDeviceInfo, cl_int, (cl_device_id, cl_device_info, size_t, void *, size_t *))    \
    X(clCreateContext, cl_context, (const cl_context_properties *, cl_uint, const cl_device_id *, \
      void (CL_CALLBACK *)(const char *, const void *, size_t, void *), void *, cl_int *))   \
    X(clReleaseContext, cl_int, (cl_context))                                              \
    X(clCreateCommandQueue, cl_command_queue, (cl_context, cl_device_id,                    \
      cl_command_queue_properties, cl_int *))                                               \
    X(clReleaseCommandQueue, cl_int, (cl_command_queue))                                   \
    X(clCreateProgramWithSource, cl_program, (cl_context, cl_uint, const char **,           \
      const size_t *, cl_int *))                                                            \
    X(clCreateProgramWithBinary, cl_program, (cl_context, cl_uint, const cl_device_id *,    \
      const size_t *, const unsigned char **, cl_int *, cl_int *))                          \
    X(clBuildProgram, cl_int, (cl_program, cl_uint, const cl_device_id *, const char *,     \
      void (CL_CALLBACK *)(cl_program, void *), void *))                                    \
    X(clGetProgramBuildInfo, cl_int, (cl_program, cl_device_id, cl_program_build_info,      \
      size_t, void *, size_t *))                                                            \
    X(clGetProgramInfo, cl_int, (cl_program, cl_program_info, size_t, void *, size_t *))    \
    X(clReleaseProgram, cl_int, (cl_program))                                              \
    X(clCreateKernel, cl_kernel, (cl_program, const char *, cl_int *))                     \
    X(clReleaseKernel, cl_int, (cl_kernel))                                                \
    X(clSetKernelArg, cl_int, (cl_kernel, cl_uint, size_t, const void *))                  \
    X(clGetKernelWorkGroupInfo, cl_int, (cl_kernel, cl_device_id, cl_kernel_work_group_info, \
      size_t, void *, size_t *))                                                            \
    X(clEnqueueNDRangeKernel, cl_int, (cl_command_queue, cl_kernel, cl_uint, const size_t *, \
      const size_t *, const size_t *, cl_uint, const cl_event *, cl_event *))               \
    X(clCreateBuffer, cl_mem, (cl_context, cl_mem_flags, size_t, void *, cl_int *))        \
    X(clReleaseMemObject, cl_int, (cl_mem))                                                \
    X(clEnqueueWriteBuffer, cl_int, (cl_command_queue, cl_mem, cl_bool, size_t, size_t,     \
      const void *, cl_uint, const cl_event *, cl_event *))                                 \
    X(clEnqueueReadBuffer, cl_int, (cl_command_queue, cl_mem, cl_bool, size_t, size_t,      \
      void *, cl_uint, const cl_event *, cl_event *))                                       \
    X(clEnqueueCopyBuffer, cl_int, (cl_command_queue, cl_mem, cl_mem, size_t, size_t,       \
      size_t, cl_uint, const cl_event *, cl_event *))                                       \
    X(clEnqueueFillBuffer, cl_int, (cl_command_queue, cl_mem, const void *, size_t, size_t, \
      size_t, cl_uint, const cl_event *, cl_event *))                                       \
    X(clFinish, cl_int, (cl_command_queue))                                                 \
    X(clFlush, cl_int, (cl_command_queue))                                                  \
    X(clReleaseEvent, cl_int, (cl_event))

typedef struct linattn_clapi_t {
#define LINATTN_CL_FIELD(name, ret, args) ret(CL_API_CALL *name) args;
    LINATTN_CL_FUNCS(LINATTN_CL_FIELD)
#undef LINATTN_CL_FIELD
} linattn_clapi_t;

extern linattn_clapi_t linattn_clapi;

/* Open the runtime once per process.  LINATTN_OK, or LINATTN_ENODEV with a
 * message saying what is missing. */
int linattn_clapi_load(void);
/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *linattn_clerr(cl_int err);

#endif
