/* linattn-bench - a small SVG line plot (log-log axes), no dependencies. */
#include <math.h>
#include <stdio.h>
#include "benchsvg.h"

#define W 900
#define HGT 560
#define L 90
#define R 260
#define TOP 50
#define BOT 70

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static double px(double x, double lo, double hi)
{
    return L + (W - L - R) * (hi > lo ? (log10(x) - lo) / (hi - lo) : 0.5);
}
static double py(double y, double lo, double hi)
{
    return HGT - BOT - (HGT - TOP - BOT) * (hi > lo ? (log10(y) - lo) / (hi - lo) : 0.5);
}

int svg_write(const char *path, const char *title, const char *xlabel, const char *ylabel,
              const svg_series *s, int ns)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < s[i].n; j++) {
            if (s[i].x[j] <= 0 || s[i].y[j] <= 0) continue;
            xlo = fmin(xlo, log10(s[i].x[j])); xhi = fmax(xhi, log10(s[i].x[j]));
            ylo = fmin(ylo, log10(s[i].y[j])); yhi = fmax(yhi, log10(s[i].y[j]));
        }
    if (!isfinite(xlo)) { xlo = 0; xhi = 1; ylo = 0; yhi = 1; }
    xlo = floor(xlo); xhi = ceil(xhi + 1e-9); ylo = floor(ylo); yhi = ceil(yhi + 1e-9);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif' font-size='13'>\n<rect width='100%%' height='100%%' "
               "fill='white'/>\n<text x='%d' y='28' font-size='16'>%s</text>\n", W, HGT, L, title);
    for (double e = xlo; e <= xhi + 1e-9; e += 1) {
        const double x = L + (W - L - R) * (xhi > xlo ? (e - xlo) / (xhi - xlo) : 0.5);
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>"
                   "<text x='%.1f' y='%d' text-anchor='middle'>1e%d</text>\n",
                x, TOP, x, HGT - BOT, x, HGT - BOT + 18, (int)e);
    }
    for (double e = ylo; e <= yhi + 1e-9; e += 1) {
        const double y = HGT - BOT - (HGT - TOP - BOT) * (yhi > ylo ? (e - ylo) / (yhi - ylo) : 0.5);
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>"
                   "<text x='%d' y='%.1f' text-anchor='end'>1e%d</text>\n",
                L, y, W - R, y, L - 6, y + 4, (int)e);
    }
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#333'/>\n", L,
            TOP, W - L - R, HGT - TOP - BOT);
    fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%s</text>\n", (W - R + L) / 2, HGT - 25,
            xlabel);
    fprintf(f, "<text transform='translate(22,%d) rotate(-90)' text-anchor='middle'>%s</text>\n",
            (HGT - BOT + TOP) / 2, ylabel);
    for (int i = 0; i < ns; i++) {
        const char *c = COLORS[i % 10];
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", c);
        for (int j = 0; j < s[i].n; j++)
            if (s[i].x[j] > 0 && s[i].y[j] > 0)
                fprintf(f, "%.1f,%.1f ", px(s[i].x[j], xlo, xhi), py(s[i].y[j], ylo, yhi));
        fprintf(f, "'/>\n");
        for (int j = 0; j < s[i].n; j++)
            if (s[i].x[j] > 0 && s[i].y[j] > 0)
                fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
                        px(s[i].x[j], xlo, xhi), py(s[i].y[j], ylo, yhi), c);
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='2'/>"
                   "<text x='%d' y='%d'>%s</text>\n", W - R + 15, TOP + 10 + 20 * i,
                W - R + 40, TOP + 10 + 20 * i, c, W - R + 46, TOP + 14 + 20 * i, s[i].name);
    }
    fprintf(f, "</svg>\n");
    return fclose(f) ? -1 : 0;
}
