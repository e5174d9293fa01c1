/* linattn fuzz seeds - writes the seed corpora for "make fuzz":
 *   mkseeds NPYDIR STRDIR
 * NPYDIR gets valid .npy images (versions 1.0, 2.0 and 3.0, ranks 0 to 8,
 * empty and non-empty, numpy-style padding and none, '<f4' and '<f2'), the
 * last truncations of the '<f2' ones, every truncation of three '<f4' ones,
 * and malformed headers; STRDIR gets the option values the
 * tools accept and near misses.  The directories must exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nfiles;

static int put(const char *dir, const unsigned char *b, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%04d", dir, nfiles++);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); return -1; }
    const int ok = fwrite(b, 1, n, f) == n;
    if (fclose(f) != 0 || !ok) { perror(path); return -1; }
    return 0;
}

/* A .npy image: preamble of the version, the header (padded with spaces
 * and a newline to a multiple of 64 when pad), nfloat floats. */
static size_t image(unsigned char *b, size_t cap, int version, const char *hdr, int pad,
                    size_t nfloat)
{
    const size_t pre = version == 1 ? 10 : 12;
    size_t hl = strlen(hdr), total;
    if (pad) hl = ((pre + hl + 1 + 63) / 64) * 64 - pre;
    total = pre + hl + 4 * nfloat;
    if (total > cap) return 0;
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)version;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hl >> (8 * i));
    memset(b + pre, ' ', hl);
    memcpy(b + pre, hdr, strlen(hdr));
    if (pad) b[pre + hl - 1] = '\n';
    for (size_t i = 0; i < nfloat; i++) {
        const float x = (float)i - 1.5f;
        unsigned int u;
        memcpy(&u, &x, 4);
        for (int k = 0; k < 4; k++) b[pre + hl + 4 * i + k] = (unsigned char)(u >> (8 * k));
    }
    return total;
}

typedef struct valid { const char *shape; size_t n; } valid;
static const valid VALID[] = {
    {"()", 1}, {"(0,)", 0}, {"(1,)", 1}, {"(3,)", 3}, {"(2, 3)", 6}, {"(2, 0, 4)", 0},
    {"(1, 2, 3, 2)", 12}, {"(1, 1, 1, 1, 2)", 2}, {"(1, 1, 1, 1, 1, 1, 1, 3)", 3},
};

static const char *const BADHDR[] = {
    "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 2), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807, 4611686018427387904), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': 2, }",
    "{'descr': '<f4', 'fortran_order': False, }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
    "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} trailing",
    "{'descr': '<f4' 'fortran_order': False 'shape': (2,)}",
    "{\"descr\": '<f4\", 'fortran_order': Fals, 'shape': (2,)}",
    "{'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': 1}",
    "{'descr': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'}",
    "{'descr': '<f4', 'descr': '<f4', 'shape': (2,), 'shape': (1,), 'fortran_order': False}",
    "{", "}", "", "{}", "[1, 2]", "{'descr': ",
};

static const char *const WORDS[] = {
    "auto", "ref", "cpu", "opencl", "recurrent", "chunk", "exp", "sqdist_sum", "sqdist_sub",
    "elu1", "identity", "autox", "CPU", "0", "1", "-1", "4096", "4097", "1048576",
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "0x10", " 12",
    "12 ", "+7", "1e3", "0.5", "-0.0", "3.4e38", "3.5e38", "1e-45", "1e-50", "nan", "inf",
    "-inf", "0x1p-149", "1e", ".", "", "1,2",
};

int main(int argc, char **argv)
{
    static unsigned char b[1 << 16], t[1 << 16];
    char hdr[512];
    if (argc != 3) {
        fprintf(stderr, "usage: mkseeds NPYDIR STRDIR\n");
        return 2;
    }
    const char *nd = argv[1], *sd = argv[2];
    size_t n;
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++)
        for (int v = 1; v <= 3; v++)
            for (int pad = 0; pad <= 1; pad++) {
                snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                         VALID[i].shape);
                if (!(n = image(b, sizeof b, v, hdr, pad, VALID[i].n)) || put(nd, b, n)) return 1;
            }
    /* '<f2' files: the shapes of an even count, their 2*n payload bytes
     * written as n/2 floats (any bits are float16 values) */
    for (size_t i = 0; i < sizeof VALID / sizeof *VALID; i++) {
        if (VALID[i].n % 2) continue;
        snprintf(hdr, sizeof hdr, "{'descr': '<f2', 'fortran_order': False, 'shape': %s, }",
                 VALID[i].shape);
        if (!(n = image(b, sizeof b, 1, hdr, 1, VALID[i].n / 2)) || put(nd, b, n)) return 1;
        for (size_t k = n > 6 ? n - 6 : 0; k < n; k++) /* truncated payloads */
            if (put(nd, b, k)) return 1;
    }
    /* every truncation (and one byte too many) of three valid files */
    static const struct { int v; const char *shape; size_t n; } TRUNC[] = {
        {1, "(2, 3)", 6}, {2, "(3,)", 3}, {3, "()", 1}};
    for (size_t i = 0; i < sizeof TRUNC / sizeof *TRUNC; i++) {
        snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                 TRUNC[i].shape);
        if (!(n = image(b, sizeof b, TRUNC[i].v, hdr, 1, TRUNC[i].n))) return 1;
        for (size_t k = 0; k < n; k++)
            if (put(nd, b, k)) return 1;
        memcpy(t, b, n);
        t[n] = 0;
        if (put(nd, t, n + 1)) return 1;
    }
    for (size_t i = 0; i < sizeof BADHDR / sizeof *BADHDR; i++)
        for (int v = 1; v <= 2; v++)
            if (!(n = image(b, sizeof b, v, BADHDR[i], 1, 2)) || put(nd, b, n)) return 1;
    /* an empty array whose other dimensions overflow when multiplied */
    n = image(b, sizeof b, 1, "{'descr': '<f4', 'fortran_order': False, "
              "'shape': (0, 4294967296, 4294967296), }", 1, 0);
    if (!n || put(nd, b, n)) return 1;
    /* bad preambles: magic, version 0 and 4, header lengths past the end */
    n = image(b, sizeof b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 1, 1);
    memcpy(t, b, n); t[1] = 'n';
    if (put(nd, t, n)) return 1;
    memcpy(t, b, n); t[6] = 0;
    if (put(nd, t, n)) return 1;
    memcpy(t, b, n); t[6] = 4;
    if (put(nd, t, n)) return 1;
    memcpy(t, b, n); t[8] = 0xff; t[9] = 0xff;
    if (put(nd, t, n)) return 1;
    n = image(b, sizeof b, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 1, 1);
    memcpy(t, b, n); t[11] = 0x80;
    if (put(nd, t, n)) return 1;
    memcpy(t, b, n); t[10] = 0x01;
    if (put(nd, t, n)) return 1;
    const int nnpy = nfiles;
    nfiles = 0;
    for (size_t i = 0; i < sizeof WORDS / sizeof *WORDS; i++)
        if (put(sd, (const unsigned char *)WORDS[i], strlen(WORDS[i]))) return 1;
    printf("mkseeds: %d .npy seeds in %s, %d string seeds in %s\n", nnpy, nd, nfiles, sd);
    return 0;
}
