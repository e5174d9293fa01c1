/* cl_inplace - how fast an OpenCL device reads and writes a decode step's
 * state with no arithmetic: the ceiling the delta family's step kernels
 * (opencl/delta.cl) are measured against in NEWS.  Not built by default:
 *   cc -O2 -o cl_inplace tools/peers/cl_inplace.c -lOpenCL
 *   UNITS=4096 ./cl_inplace     (4096 heads of K = V = 128: B=256, H=16)
 * Kernels (a group of 256 work-items a head, every load before any store):
 *   rmw16   a bf16 state in place in delta_stepw2's pattern (16 rows of 4
 *           adjacent bf16 a work-item, 8 row groups)
 *   copy16  the same pattern, into a second buffer
 *   rmw32   a float32 state in place in delta_stepw's pattern (two groups a
 *           head, 8 rows of 4 floats a work-item, 16 row groups)
 *   flat16  the bf16 state's bytes as one flat array of 16-byte words
 * Medians of 31 runs timed by OpenCL events; TB/s counts bytes read plus
 * bytes written.  The first GPU device, else the first device. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static const char *src =
"__kernel __attribute__((reqd_work_group_size(256,1,1)))\n"
"void rmw16(__global uint2 *s) {\n" /* unit of 128x128 bf16 = 128 rows of 32 uint2; item: col cg (32), rows rg+8m, 16 rows */
"  const int lid = get_local_id(0), cg = lid % 32, rg = lid / 32;\n"
"  __global uint2 *S = s + get_group_id(1) * 128L * 32 + cg;\n"
"  uint2 r[16];\n"
"  for (int m = 0; m < 16; m++) r[m] = S[(rg + 8 * m) * 32];\n"
"  for (int m = 0; m < 16; m++) S[(rg + 8 * m) * 32] = r[m] ^ (uint2)(0x00010001u);\n"
"}\n"
"__kernel __attribute__((reqd_work_group_size(256,1,1)))\n"
"void copy16(__global const uint2 *s, __global uint2 *d) {\n"
"  const int lid = get_local_id(0), cg = lid % 32, rg = lid / 32;\n"
"  const long b = get_group_id(1) * 128L * 32 + cg;\n"
"  uint2 r[16];\n"
"  for (int m = 0; m < 16; m++) r[m] = s[b + (rg + 8 * m) * 32];\n"
"  for (int m = 0; m < 16; m++) d[b + (rg + 8 * m) * 32] = r[m];\n"
"}\n"
"__kernel __attribute__((reqd_work_group_size(256,1,1)))\n"
"void rmw32(__global float4 *s) {\n" /* f32 unit 128 rows of 32 float4; 2 groups a unit of 16 float4 columns; item: cg (16), rows rg + 16m, 8 rows */
"  const int lid = get_local_id(0), cg = lid % 16, rg = lid / 16;\n"
"  __global float4 *S = s + get_group_id(1) * 128L * 32 + get_group_id(0) * 16 + cg;\n"
"  float4 r[8];\n"
"  for (int m = 0; m < 8; m++) r[m] = S[(rg + 16 * m) * 32];\n"
"  for (int m = 0; m < 8; m++) S[(rg + 16 * m) * 32] = r[m] * 0.999f;\n"
"}\n"
"__kernel void flat16(__global uint4 *s) {\n"
"  const size_t i = get_global_id(0); s[i] = s[i] ^ (uint4)(0x00010001u);\n"
"}\n";
#define CK(x) do { cl_int e_ = (x); if (e_) { fprintf(stderr, "%s: %d\n", #x, e_); exit(1); } } while (0)
static int cmpd(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double run(cl_command_queue q, cl_kernel k, size_t g0, size_t g1, size_t l0, int reps)
{
    double t[64];
    size_t gs[2] = {g0, g1}, ls[2] = {l0, 1};
    for (int r = 0; r < reps; r++) {
        cl_event ev; cl_ulong a, b;
        CK(clEnqueueNDRangeKernel(q, k, g1 ? 2 : 1, NULL, gs, l0 ? ls : NULL, 0, NULL, &ev));
        CK(clWaitForEvents(1, &ev));
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
        clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
        t[r] = (b - a) * 1e-6; clReleaseEvent(ev);
    }
    qsort(t, reps, sizeof *t, cmpd);
    return t[reps / 2];
}
int main(void)
{
    cl_platform_id p[4]; cl_uint np; cl_device_id d = NULL; cl_int e;
    CK(clGetPlatformIDs(4, p, &np));
    for (cl_uint i = 0; i < np && !d; i++) if (clGetDeviceIDs(p[i], CL_DEVICE_TYPE_GPU, 1, &d, NULL)) d = NULL;
    if (!d) CK(clGetDeviceIDs(p[0], CL_DEVICE_TYPE_ALL, 1, &d, NULL));
    char name[256]; clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof name, name, NULL); printf("device %s\n", name);
    cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &e); CK(e);
    cl_command_queue q = clCreateCommandQueue(c, d, CL_QUEUE_PROFILING_ENABLE, &e); CK(e);
    cl_program pr = clCreateProgramWithSource(c, 1, &src, NULL, &e); CK(e);
    CK(clBuildProgram(pr, 1, &d, "", NULL, NULL));
    const long units = getenv("UNITS") ? atol(getenv("UNITS")) : 4096;
    const size_t b16 = units * 128 * 128 * 2, b32 = 2 * b16;
    cl_mem s = clCreateBuffer(c, CL_MEM_READ_WRITE, b32, NULL, &e); CK(e);
    cl_mem dd = clCreateBuffer(c, CL_MEM_READ_WRITE, b32, NULL, &e); CK(e);
    const int zero = 0;
    CK(clEnqueueFillBuffer(q, s, &zero, 4, 0, b32, 0, NULL, NULL)); CK(clFinish(q));
    cl_kernel k1 = clCreateKernel(pr, "rmw16", &e); CK(e); CK(clSetKernelArg(k1, 0, sizeof s, &s));
    cl_kernel k2 = clCreateKernel(pr, "copy16", &e); CK(e); CK(clSetKernelArg(k2, 0, sizeof s, &s)); CK(clSetKernelArg(k2, 1, sizeof dd, &dd));
    cl_kernel k3 = clCreateKernel(pr, "rmw32", &e); CK(e); CK(clSetKernelArg(k3, 0, sizeof s, &s));
    cl_kernel k4 = clCreateKernel(pr, "flat16", &e); CK(e); CK(clSetKernelArg(k4, 0, sizeof s, &s));
    for (int r = 0; r < 3; r++) {
        double t1 = run(q, k1, 256, units, 256, 31), t2 = run(q, k2, 256, units, 256, 31);
        double t3 = run(q, k3, 512, units, 256, 31), t4 = run(q, k4, b16 / 16, 0, 256, 31);
        printf("R%d rmw16 %.4f ms %.3f TB/s | copy16 %.4f ms %.3f TB/s | rmw32 %.4f ms %.3f TB/s | flat16 %.4f ms %.3f TB/s\n", r,
               t1, 2 * b16 / t1 / 1e9, t2, 2 * b16 / t2 / 1e9, t3, 2 * b32 / t3 / 1e9, t4, 2 * b16 / t4 / 1e9);
    }
    return 0;
}
