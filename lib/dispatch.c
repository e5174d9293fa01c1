/* linattn - CPU probing and kernel selection.
 *
 * The table starts with the scalar kernels, then the best compiled-in ISA
 * that the CPU (and the operating system) supports overrides the slots of
 * the kernels it has.  LINATTN_ISA may force one; forcing one the CPU
 * cannot run is an error. */
#include <string.h>
#include <stdio.h>
#include "internal.h"
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void probe(linattn_cpu_caps *f)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
              f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return;
    const uint64_t xcr0 = xgetbv0();
    const int ymm_ok = (xcr0 & 0x6) == 0x6;      /* SSE + AVX state saved */
    const int zmm_ok = (xcr0 & 0xe6) == 0xe6;    /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    f->avx2 = ymm_ok && fma && f16c && ((b >> 5) & 1);
    f->avx512 = zmm_ok && f->avx2 && ((b >> 16) & 1) /* F */ && ((b >> 17) & 1) /* DQ */ &&
                ((b >> 30) & 1) /* BW */ && ((b >> 31) & 1) /* VL */;
    if (f->avx512 && a >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        f->avx512bf16 = (a >> 5) & 1; /* leaf 7 sub-leaf 1: EAX bit 5 */
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#include <asm/hwcap.h>
static void probe(linattn_cpu_caps *f)
{
    f->neon = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
}
#else
static void probe(linattn_cpu_caps *f) { (void)f; }
#endif

void linattn_cpu_probe(linattn_cpu_caps *f)
{
    memset(f, 0, sizeof *f);
    probe(f);
}

/* The ISAs this build carries, best first, each with the function that
 * overrides the slots of the kernels it has (the rest stay scalar). */
typedef struct isa_entry {
    const char *name;
    void (*reg)(linattn_kernels *k);
    int (*usable)(const linattn_cpu_caps *f);
} isa_entry;

#ifdef LINATTN_HAVE_AVX512
static int has_avx512(const linattn_cpu_caps *f) { return f->avx512; }
#endif
#ifdef LINATTN_HAVE_AVX2
static int has_avx2(const linattn_cpu_caps *f) { return f->avx2; }
#endif
#ifdef LINATTN_HAVE_NEON
static int has_neon(const linattn_cpu_caps *f) { return f->neon; }
#endif
static int always(const linattn_cpu_caps *f) { (void)f; return 1; }

static const isa_entry isas[] = {
#ifdef LINATTN_HAVE_AVX512
    {"avx512", linattn_register_avx512, has_avx512},
#endif
#ifdef LINATTN_HAVE_AVX2
    {"avx2", linattn_register_avx2, has_avx2},
#endif
#ifdef LINATTN_HAVE_NEON
    {"neon", linattn_register_neon, has_neon},
#endif
    {"scalar", linattn_register_scalar, always},
};

/* The scalar table, then the slots entry e has; then the kernels of e
 * built for a further feature of this CPU. */
static void take(linattn_kernels *k, const isa_entry *e, const linattn_cpu_caps *f)
{
    linattn_register_scalar(k);
    e->reg(k);
#ifdef LINATTN_HAVE_AVX512BF16
    if (!strcmp(e->name, "avx512") && f->avx512bf16) k->delta_rec = linattn_delta_rec_avx512bf16;
#else
    (void)f;
#endif
}

const char *linattn_isa_compiled(void)
{
    return "scalar"
#ifdef LINATTN_HAVE_AVX2
           " avx2"
#endif
#ifdef LINATTN_HAVE_AVX512
           " avx512"
#endif
#ifdef LINATTN_HAVE_NEON
           " neon"
#endif
        ;
}

static int known_isa(const char *s)
{
    static const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i])) return 1;
    return 0;
}

int linattn_kernels_select(linattn_kernels *k, const char *forced)
{
    linattn_cpu_caps f;
    linattn_cpu_probe(&f);
    const size_t n = sizeof isas / sizeof *isas;
    take(k, &isas[n - 1], &f); /* the scalar kernels, always last */
    if (forced && *forced) {
        if (!known_isa(forced))
            return linattn_fail(LINATTN_EINVAL,
                                "isa %s: unknown (ref, scalar, avx2, avx512, neon)",
                                forced);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(isas[i].name, forced)) continue;
            if (!isas[i].usable(&f))
                return linattn_fail(LINATTN_EUNSUPPORTED,
                                    "isa %s: this CPU cannot run it", forced);
            take(k, &isas[i], &f);
            return LINATTN_OK;
        }
        return linattn_fail(LINATTN_EUNSUPPORTED,
                            "isa %s: not compiled into this build (have: %s)",
                            forced, linattn_isa_compiled());
    }
    for (size_t i = 0; i < n; i++)
        if (isas[i].usable(&f)) {
            take(k, &isas[i], &f);
            break;
        }
    return LINATTN_OK;
}

int linattn_isa_usable(const char *isa)
{
    linattn_cpu_caps f;
    if (!isa) return 0;
    if (!strcmp(isa, "ref")) return 1;
    linattn_cpu_probe(&f);
    for (size_t i = 0; i < sizeof isas / sizeof *isas; i++)
        if (!strcmp(isas[i].name, isa)) return isas[i].usable(&f);
    return 0;
}

const char *linattn_cpu_features(void)
{
    linattn_cpu_caps f;
    linattn_cpu_probe(&f);
    if (f.avx512bf16) return "avx2 fma f16c avx512f avx512dq avx512bw avx512vl avx512bf16";
    if (f.avx512) return "avx2 fma f16c avx512f avx512dq avx512bw avx512vl";
    if (f.avx2) return "avx2 fma f16c";
    if (f.neon) return "asimd";
    return "baseline";
}
