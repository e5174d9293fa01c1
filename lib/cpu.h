/* linattn - what the CPU can run (probed once per context). */
#ifndef LINATTN_CPU_H
#define LINATTN_CPU_H

typedef struct linattn_cpu_caps {
    int avx2;   /* AVX2 + FMA + F16C, YMM state enabled by the OS */
    int avx512; /* AVX-512 F/DQ/BW/VL, ZMM state enabled by the OS */
    int avx512bf16; /* and AVX512_BF16 (vcvtne2ps2bf16) */
    int neon;   /* AArch64 Advanced SIMD */
} linattn_cpu_caps;

void linattn_cpu_probe(linattn_cpu_caps *f);

#endif
