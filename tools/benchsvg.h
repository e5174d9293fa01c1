/* linattn-bench - a small SVG line plot (log-log), no dependencies. */
#ifndef LINATTN_BENCHSVG_H
#define LINATTN_BENCHSVG_H

typedef struct svg_series {
    char name[96];
    int n;
    double x[32], y[32];
} svg_series;

/* Write series (points sorted by x) to path; 0 on success. */
int svg_write(const char *path, const char *title, const char *xlabel, const char *ylabel,
              const svg_series *s, int ns);

#endif
