/* linattn - OpenCL device probing, scoring and selection; per-context
 * device state; device memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clpriv.h"

#define MAX_DEVICES 64

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_rc;
static char probe_msg[320];
static int ndev;
static linattn_device_info devs[MAX_DEVICES];
static cl_device_id dev_ids[MAX_DEVICES];

int linattn_cl_fail(cl_int err, const char *what)
{
    int code = LINATTN_EDEVICE;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY ||
        err == CL_INVALID_BUFFER_SIZE)
        code = LINATTN_ENOMEM;
    return linattn_fail(code, "%s: %s (%d)", what, linattn_clerr(err), (int)err);
}

static void str_info(cl_device_id d, cl_device_info what, char *buf, size_t n)
{
    buf[0] = '\0';
    if (linattn_clapi.clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[n - 1] = '\0';
}

/* An NVIDIA device's compute capability times 10 (its OpenCL names the
 * query cl_nv_device_attribute_query), else 0: kernels may take PTX
 * instructions that the capability has. */
static int nv_capability(cl_device_id d)
{
    size_t n = 0;
    cl_uint major = 0, minor = 0;
    if (linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || !n)
        return 0;
    char *ext = malloc(n + 1);
    if (!ext) return 0;
    str_info(d, CL_DEVICE_EXTENSIONS, ext, n + 1);
    const int nv = strstr(ext, "cl_nv_device_attribute_query") != NULL;
    free(ext);
    if (!nv) return 0;
    if (linattn_clapi.clGetDeviceInfo(d, 0x4000 /* COMPUTE_CAPABILITY_MAJOR_NV */, sizeof major,
                                      &major, NULL) != CL_SUCCESS ||
        linattn_clapi.clGetDeviceInfo(d, 0x4001 /* COMPUTE_CAPABILITY_MINOR_NV */, sizeof minor,
                                      &minor, NULL) != CL_SUCCESS)
        return 0;
    return (int)(major * 10 + minor);
}

/* Fill one entry; decide whether our kernels can run there. */
static void describe(linattn_device_info *di, cl_platform_id p, cl_device_id d)
{
    cl_device_type type = 0;
    cl_uint cu = 0, mhz = 0;
    cl_ulong gmem = 0, lmem = 0, maxalloc = 0;
    size_t maxwg = 0;
    cl_bool avail = CL_FALSE, compiler = CL_FALSE;
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof mhz, &mhz, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
    linattn_clapi.clGetDeviceInfo(d, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    str_info(d, CL_DEVICE_NAME, di->name, sizeof di->name);
    str_info(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
    str_info(d, CL_DEVICE_VERSION, di->version, sizeof di->version);
    di->platform_name[0] = '\0';
    linattn_clapi.clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof di->platform_name,
                                    di->platform_name, NULL);
    di->platform_name[sizeof di->platform_name - 1] = '\0';
    di->is_gpu = (type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
    di->compute_units = (int)cu;
    di->clock_mhz = (int)mhz;
    di->global_mem = gmem;
    di->local_mem = lmem;
    di->max_alloc = maxalloc;
    int major = 0, minor = 0;
    sscanf(di->version, "OpenCL %d.%d", &major, &minor);
    di->usable = 0;
    if (!avail) snprintf(di->note, sizeof di->note, "not available");
    else if (!compiler) snprintf(di->note, sizeof di->note, "no OpenCL C compiler");
    else if (major * 10 + minor < 12)
        snprintf(di->note, sizeof di->note, "OpenCL %d.%d (1.2 needed)", major, minor);
    else if (maxwg < LINATTN_CL_WG)
        snprintf(di->note, sizeof di->note, "work-groups of %zu (%d needed)", maxwg, LINATTN_CL_WG);
    else if (lmem < 32768)
        snprintf(di->note, sizeof di->note, "%llu bytes of local memory (32 KiB needed)",
                 (unsigned long long)lmem);
    else {
        di->usable = 1;
        snprintf(di->note, sizeof di->note, "ok");
    }
    /* GPU over CPU device, then compute units x clock, then memory */
    di->score = (di->is_gpu ? 1e12 : 0.0) +
                (double)cu * (double)mhz * 1e3 + (double)(gmem >> 30);
}

static void probe(void)
{
    cl_platform_id plats[16];
    cl_uint np = 0;
    if ((probe_rc = linattn_clapi_load())) {
        snprintf(probe_msg, sizeof probe_msg, "%s", linattn_last_error());
        return;
    }
    cl_int err = linattn_clapi.clGetPlatformIDs(16, plats, &np);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && np == 0)) {
        snprintf(probe_msg, sizeof probe_msg, "OpenCL runtime has no platform "
                 "(no ICD registered in /etc/OpenCL/vendors)");
        probe_rc = LINATTN_ENODEV;
        return;
    }
    if (err != CL_SUCCESS) {
        snprintf(probe_msg, sizeof probe_msg, "clGetPlatformIDs: %s (%d)", linattn_clerr(err),
                 (int)err);
        probe_rc = LINATTN_ENODEV;
        return;
    }
    for (cl_uint p = 0; p < np && p < 16; p++) {
        cl_device_id ids[MAX_DEVICES];
        cl_uint nd = 0;
        if (linattn_clapi.clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd) !=
            CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < nd && d < MAX_DEVICES && ndev < MAX_DEVICES; d++) {
            linattn_device_info *di = &devs[ndev];
            memset(di, 0, sizeof *di);
            di->platform = (int)p;
            di->device = (int)d;
            describe(di, plats[p], ids[d]);
            dev_ids[ndev++] = ids[d];
        }
    }
}

int linattn_opencl_built(void) { return 1; }

int linattn_opencl_devices(linattn_device_info *out, int max, int *count)
{
    if (!count) return linattn_fail(LINATTN_ENULL, "count: NULL");
    *count = 0;
    if (max < 0) return linattn_fail(LINATTN_ERANGE, "max: %d (must be >= 0)", max);
    if (max > 0 && !out) return linattn_fail(LINATTN_ENULL, "out: NULL with max %d", max);
    pthread_once(&probe_once, probe);
    if (probe_rc) return linattn_fail(probe_rc, "%s", probe_msg);
    for (int i = 0; i < ndev && i < max; i++) out[i] = devs[i];
    *count = ndev;
    return LINATTN_OK;
}

/* Index of the device a spec names, or a negative status. */
static int choose(const char *spec)
{
    pthread_once(&probe_once, probe);
    if (probe_rc) return linattn_fail(probe_rc, "%s", probe_msg);
    if (spec && spec[6] == ':') {
        int p, d, used = 0;
        if (sscanf(spec + 7, "%d.%d%n", &p, &d, &used) != 2 || spec[7 + used])
            return linattn_fail(LINATTN_EINVAL, "device %s: expected opencl:P.D", spec);
        for (int i = 0; i < ndev; i++)
            if (devs[i].platform == p && devs[i].device == d) {
                if (!devs[i].usable)
                    return linattn_fail(LINATTN_ENODEV, "device %s (%s): %s", spec,
                                        devs[i].name, devs[i].note);
                return i;
            }
        return linattn_fail(LINATTN_ENODEV, "device %s: no such OpenCL device (%d found)",
                            spec, ndev);
    }
    int best = -1;
    const int any = linattn_fault_on(LINATTN_FAULT_CL_AUTO_ANY); /* tests: auto may take PoCL */
    for (int i = 0; i < ndev; i++)
        if (devs[i].usable && (spec || any || devs[i].is_gpu) &&
            (best < 0 || devs[i].score > devs[best].score))
            best = i;
    if (best < 0)
        return linattn_fail(LINATTN_ENODEV, spec ? "no usable OpenCL device (%d found)"
                                                 : "no OpenCL GPU or accelerator (%d devices found)",
                            ndev);
    return best;
}

int linattn_cl_open(const char *spec, int verbose, linattn_cl **out)
{
    cl_int err;
    *out = NULL;
    if (spec && strncmp(spec, "opencl", 6))
        return linattn_fail(LINATTN_EINVAL, "device %s: expected cpu or opencl[:P.D]", spec);
    if (spec && spec[6] && spec[6] != ':')
        return linattn_fail(LINATTN_EINVAL, "device %s: expected cpu or opencl[:P.D]", spec);
    const int i = choose(spec);
    if (i < 0) return i;
    linattn_cl *cl = linattn_calloc(1, sizeof *cl);
    if (!cl) return linattn_fail(LINATTN_ENOMEM, "OpenCL context: out of memory");
    cl->dev = dev_ids[i];
    cl->info = devs[i];
    cl->verbose = verbose;
    const char *prof = getenv("LINATTN_CL_PROFILE");
    cl->profile = prof && *prof && strcmp(prof, "0");
    const char *keep = getenv("LINATTN_CL_KEEP");
    cl->keep = !(keep && !strcmp(keep, "0"));
    cl->nv_cc = nv_capability(cl->dev);
    snprintf(cl->desc, sizeof cl->desc, "opencl:%d.%d %s (%s)", devs[i].platform,
             devs[i].device, devs[i].name, devs[i].platform_name);
    pthread_mutex_init(&cl->lock, NULL);
    cl->ctx = linattn_clapi.clCreateContext(NULL, 1, &cl->dev, NULL, NULL, &err);
    if (!cl->ctx) goto fail;
    cl->queue = linattn_clapi.clCreateCommandQueue(cl->ctx, cl->dev, 0, &err);
    if (!cl->queue) goto fail;
    cl->dummy = linattn_clapi.clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
    if (!cl->dummy) goto fail;
    *out = cl;
    return LINATTN_OK;
fail:;
    int rc = linattn_cl_fail(err, cl->desc);
    linattn_cl_close(cl);
    return rc;
}

void linattn_cl_close(linattn_cl *cl)
{
    if (!cl) return;
    linattn_cl_programs_release(cl);
    linattn_cl_spare_release(cl);
    if (cl->dummy) linattn_clapi.clReleaseMemObject(cl->dummy);
    if (cl->vflag) linattn_clapi.clReleaseMemObject(cl->vflag);
    for (int i = 0; i < 2; i++)
        if (cl->aux[i]) linattn_clapi.clReleaseCommandQueue(cl->aux[i]);
    if (cl->queue) linattn_clapi.clReleaseCommandQueue(cl->queue);
    if (cl->ctx) linattn_clapi.clReleaseContext(cl->ctx);
    pthread_mutex_destroy(&cl->lock);
    free(cl);
}

const char *linattn_cl_describe(const linattn_cl *cl) { return cl->desc; }

int linattn_cl_is_gpu(const linattn_cl *cl) { return cl->info.is_gpu; }

int linattn_cl_zero_locked(linattn_cl *cl, cl_mem m, size_t bytes)
{
    const float z = 0.0f;
    if (bytes < sizeof z) return LINATTN_OK;
    cl_int err = linattn_clapi.clEnqueueFillBuffer(cl->queue, m, &z, sizeof z, 0,
                                                   bytes / sizeof z * sizeof z, 0, NULL, NULL);
    if (err == CL_SUCCESS) err = linattn_clapi.clFinish(cl->queue);
    if (err == CL_SUCCESS) return LINATTN_OK;
    linattn_clapi.clReleaseMemObject(m);
    return linattn_cl_fail(err, "clEnqueueFillBuffer");
}

int linattn_cl_alloc_locked(linattn_cl *cl, size_t bytes, int zero, void **mem)
{
    cl_int err;
    *mem = NULL;
    if (bytes > cl->info.max_alloc)
        return linattn_fail(LINATTN_ENOMEM, "%s: %zu bytes in one buffer, above the device's "
                            "limit of %llu", cl->desc, bytes,
                            (unsigned long long)cl->info.max_alloc);
    if (!bytes) bytes = 4;
    cl_mem m = NULL;
    if (linattn_fault_on(LINATTN_FAULT_CL_OOM)) /* tests: the device is out of memory */
        err = CL_MEM_OBJECT_ALLOCATION_FAILURE;
    else
        m = linattn_clapi.clCreateBuffer(cl->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (!m) return linattn_cl_fail(err, "clCreateBuffer");
    const int rc = zero ? linattn_cl_zero_locked(cl, m, bytes) : LINATTN_OK;
    if (!rc) *mem = m;
    return rc;
}

int linattn_cl_alloc(linattn_cl *cl, size_t bytes, int zero, void **mem)
{
    pthread_mutex_lock(&cl->lock);
    const int rc = linattn_cl_alloc_locked(cl, bytes, zero, mem);
    pthread_mutex_unlock(&cl->lock);
    return rc;
}

void linattn_cl_free(void *mem)
{
    if (mem) linattn_clapi.clReleaseMemObject((cl_mem)mem);
}

int linattn_cl_write(linattn_cl *cl, void *mem, size_t off, size_t bytes, const void *src)
{
    pthread_mutex_lock(&cl->lock);
    cl_int err = linattn_clapi.clEnqueueWriteBuffer(cl->queue, (cl_mem)mem, CL_TRUE, off, bytes,
                                                    src, 0, NULL, NULL);
    pthread_mutex_unlock(&cl->lock);
    return err == CL_SUCCESS ? LINATTN_OK : linattn_cl_fail(err, "clEnqueueWriteBuffer");
}

int linattn_cl_read(linattn_cl *cl, void *mem, size_t off, size_t bytes, void *dst)
{
    pthread_mutex_lock(&cl->lock);
    cl_int err = linattn_clapi.clEnqueueReadBuffer(cl->queue, (cl_mem)mem, CL_TRUE, off, bytes,
                                                   dst, 0, NULL, NULL);
    pthread_mutex_unlock(&cl->lock);
    return err == CL_SUCCESS ? LINATTN_OK : linattn_cl_fail(err, "clEnqueueReadBuffer");
}
