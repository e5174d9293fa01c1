/* linattn fuzz target - the string parsers behind the tools' options
 * (tools/toolutil.c) and linattn_ela_feature_parse, each on a NUL-terminated
 * copy of the input.  Besides memory errors and undefined behaviour, it
 * aborts when a parser accepts something it should not:
 *   - tool_parse_int: the value lies in [lo, hi] and is what strtol reads;
 *   - tool_parse_float: the value is finite and what strtod reads;
 *   - tool_parse_backend/algo, linattn_ela_feature_parse: only the exact
 *     names, and a refused string leaves the output untouched. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h" /* linattn.h and linattn_clear_error */
#include "toolutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *s)
{
    fprintf(stderr, "fuzz_strings: %s: contract broken on \"%s\"\n", what, s);
    abort();
}

static const long RANGES[][2] = {
    {LONG_MIN, LONG_MAX}, {1, 4096}, {1, 1L << 20}, {0, 0}, {-5, 5},
};

static void check_int(const char *s)
{
    for (size_t r = 0; r < sizeof RANGES / sizeof *RANGES; r++) {
        const long lo = RANGES[r][0], hi = RANGES[r][1];
        long v = 12345;
        if (tool_parse_int(s, lo, hi, &v)) {
            if (v != 12345) fail("tool_parse_int wrote on failure", s);
            continue;
        }
        if (v < lo || v > hi) fail("tool_parse_int out of range", s);
        char *end;
        errno = 0;
        if (strtol(s, &end, 10) != v || *end || errno) fail("tool_parse_int value", s);
    }
}

static void check_float(const char *s)
{
    float f = 42.0f;
    if (tool_parse_float(s, &f)) {
        if (f != 42.0f) fail("tool_parse_float wrote on failure", s);
        return;
    }
    if (!isfinite(f)) fail("tool_parse_float not finite", s);
    char *end;
    if ((float)strtod(s, &end) != f || *end) fail("tool_parse_float value", s);
}

static void check_names(const char *s)
{
    static const char *const backends[] = {"auto", "ref", "cpu", "opencl"};
    static const char *const algos[] = {"auto", "recurrent", "chunk"};
    linattn_backend b = (linattn_backend)77;
    if (!tool_parse_backend(s, &b)) {
        if ((int)b < 0 || (size_t)b >= sizeof backends / sizeof *backends || strcmp(backends[b], s))
            fail("tool_parse_backend", s);
    } else if ((int)b != 77) {
        fail("tool_parse_backend wrote on failure", s);
    }
    linattn_algo a = (linattn_algo)77;
    if (!tool_parse_algo(s, &a)) {
        if ((int)a < 0 || (size_t)a >= sizeof algos / sizeof *algos || strcmp(algos[a], s))
            fail("tool_parse_algo", s);
    } else if ((int)a != 77) {
        fail("tool_parse_algo wrote on failure", s);
    }
    linattn_ela_feature e = (linattn_ela_feature)77;
    linattn_clear_error();
    if (!linattn_ela_feature_parse(s, &e)) {
        const char *name = linattn_ela_feature_name(e);
        if (!name || strcmp(name, s)) fail("linattn_ela_feature_parse", s);
    } else if ((int)e != 77 || !linattn_last_error()[0]) {
        fail("linattn_ela_feature_parse failure", s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    check_int(s);
    check_float(s);
    check_names(s);
    free(s);
    return 0;
}
