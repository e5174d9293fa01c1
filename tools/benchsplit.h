/* linattn-bench --devices: one prefill split over several OpenCL contexts. */
#ifndef LINATTN_BENCHSPLIT_H
#define LINATTN_BENCHSPLIT_H

#include "linattn.h"

/* Time the prefill of op (gdn, kla or gla; others are skipped with a note)
 * on one OpenCL context and split over ndev (the usable devices in turn,
 * one context each), median of reps; prints one row.  0, or 1 on failure. */
int bench_split(const char *op, long B, long T, long H, long K, long V, int ndev, long reps);

#endif
