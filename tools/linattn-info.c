/* linattn-info - what linattn finds on this machine and what it would run
 * (see linattn-info(1)). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "toolutil.h"

#define PROG "linattn-info"

/* The CPU's name from /proc/cpuinfo (Linux), or "unknown". */
static void cpu_model(char *out, size_t cap)
{
    static const char *const keys[] = {"model name", "Model", "Hardware", "CPU part"};
    char line[512];
    snprintf(out, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
        rewind(f);
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, keys[k], strlen(keys[k]))) continue;
            const char *c = strchr(line, ':');
            if (!c) continue;
            c++;
            while (*c == ' ' || *c == '\t') c++;
            snprintf(out, cap, "%.*s", (int)strcspn(c, "\n"), c);
            fclose(f);
            return;
        }
    }
    fclose(f);
}

/* Every OpenCL device, its score and whether our kernels can run there. */
static void list_devices(void)
{
    linattn_device_info devs[32];
    int n = 0;
    if (!linattn_opencl_built()) {
        printf("opencl       not in this build (configure found no OpenCL headers)\n");
        return;
    }
    if (linattn_opencl_devices(devs, 32, &n)) {
        printf("opencl       no runtime: %s\n", linattn_last_error());
        return;
    }
    printf("opencl       %d device%s%s\n", n, n == 1 ? "" : "s", n ? " (P.D for LINATTN_DEVICE=opencl:P.D):" : "");
    for (int i = 0; i < n && i < 32; i++) {
        const linattn_device_info *d = &devs[i];
        printf("  %d.%d  %-4s %s (%s), %d CUs @ %d MHz, %.1f GiB, %s; score %.4g; %s\n",
               d->platform, d->device, d->is_gpu ? "gpu" : "cpu", d->name, d->platform_name,
               d->compute_units, d->clock_mhz, d->global_mem / 1073741824.0, d->version,
               d->score, d->usable ? "usable" : d->note);
    }
}

/* One forward of op ("ela", "gka" or a delta operator) on ctx, K = V = 128,
 * H = 1 and T tokens (zeros: the timing does not depend on the values),
 * with auto's algo; its form and reason on one line. */
static int auto_form(linattn_ctx *ctx, const char *name, int64_t T)
{
    const int64_t K = 128, V = 128, n = T * K;
    float *x = calloc((size_t)(3 * n + T), sizeof *x);
    if (!x) return 1;
    const linattn_tensor q = linattn_tensor_4d(x, 1, T, 1, K), v = linattn_tensor_4d(x, 1, T, 1, V);
    const linattn_tensor o = linattn_tensor_4d(x + 2 * n, 1, T, 1, V);
    int rc;
    if (!strcmp(name, "ela")) {
        linattn_ela_io io = {.q = q, .k = q, .v = v, .o = o};
        rc = linattn_ela_forward(ctx, &io, NULL);
    } else if (!strcmp(name, "gka")) {
        linattn_gka_io io = {.q = q, .k = q, .v = v, .o = o};
        rc = linattn_gka_forward(ctx, &io, NULL);
    } else {
        linattn_delta_io io = {.q = q, .k = q, .v = v, .o = o,
                               .beta = linattn_tensor_3d(x + 3 * n, 1, T, 1)};
        rc = linattn_gdn_forward(ctx, &io, NULL);
    }
    free(x);
    if (rc) printf("auto %-7s  %s\n", name, linattn_last_error());
    else
        printf("auto %-7s  %s: %s\n", name, linattn_ctx_last_form(ctx),
               linattn_ctx_last_reason(ctx));
    return rc;
}

/* --forms: what auto runs for K = V = 128 and long sequences (measuring
 * ela's and gka's forms as a context does on its first large call). */
static int show_forms(linattn_ctx *ctx)
{
    /* a call large enough that auto measures: 64 chunks of 64 tokens per thread */
    const int64_t T = 4096 * (int64_t)linattn_ctx_threads(ctx);
    return auto_form(ctx, "gdn", T) | auto_form(ctx, "ela", T) | auto_form(ctx, "gka", T);
}

int main(int argc, char **argv)
{
    int forms = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: " PROG " [--help] [--version] [--forms]\n"
                   "Prints the CPU, its features, the kernels built and chosen, threads, BLAS\n"
                   "and OpenCL devices; --forms: the forms auto runs (measured, seconds).\n"
                   "See linattn-info(1).\n");
            return 0;
        }
        if (!strcmp(argv[i], "--forms")) {
            forms = 1;
            continue;
        }
        if (!strcmp(argv[i], "--version")) {
            printf(PROG " (linattn) %s\n", linattn_version_string());
            return 0;
        }
        tool_error(PROG, "unknown argument '%s' (try --help)", argv[i]);
        return 2;
    }
    char model[256], usable[128] = "", buf[128];
    cpu_model(model, sizeof model);
    snprintf(buf, sizeof buf, "%s", linattn_isa_compiled());
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " "))
        if (linattn_isa_usable(t)) {
            strncat(usable, usable[0] ? " " : "", sizeof usable - strlen(usable) - 1);
            strncat(usable, t, sizeof usable - strlen(usable) - 1);
        }

    printf("linattn      %s\n", linattn_version_string());
    printf("cpu          %s (%ld logical CPUs online)\n", model, sysconf(_SC_NPROCESSORS_ONLN));
    printf("features     %s\n", linattn_cpu_features());
    printf("isas built   %s\n", linattn_isa_compiled());
    printf("isas usable  %s\n", usable);
    printf("blas         %s\n", linattn_blas_info());
    list_devices();

    linattn_ctx *ctx = NULL;
    if (linattn_ctx_create(NULL, &ctx)) {
        printf("chosen       none: %s\n", linattn_last_error());
        return 1;
    }
    const char *isa_env = getenv("LINATTN_ISA"), *thr_env = getenv("LINATTN_NUM_THREADS");
    const char *dev_env = getenv("LINATTN_DEVICE");
    const linattn_backend be = linattn_ctx_backend(ctx);
    printf("backend      %s\n", be == LINATTN_BACKEND_REF ? "ref" : be == LINATTN_BACKEND_OPENCL ? "opencl" : "cpu");
    printf("device       %s%s\n", linattn_ctx_device(ctx),
           dev_env && *dev_env ? " (forced by LINATTN_DEVICE)"
                               : " (auto: an OpenCL GPU/accelerator if usable, else the CPU)");
    printf("isa chosen   %s%s\n", linattn_ctx_isa(ctx),
           isa_env && *isa_env ? " (forced by LINATTN_ISA)" : " (best usable; LINATTN_ISA forces)");
    printf("threads      %d%s%s\n", linattn_ctx_threads(ctx),
           thr_env && *thr_env ? " (LINATTN_NUM_THREADS)" : " (OpenMP default; LINATTN_NUM_THREADS sets)",
           linattn_have_openmp() ? "" : "; built without OpenMP: parts run one after another");
    const int rc = forms ? show_forms(ctx) : 0;
    if (!forms)
        printf("auto forms   measured per context and shape on the first large call "
               "(--forms shows them)\n");
    linattn_ctx_destroy(ctx);
    return rc ? 1 : 0;
}
