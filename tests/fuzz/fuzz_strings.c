/* linattn fuzz target - the string parsers behind the tools' options
 * (tools/toolutil.c) and linattn_ela_feature_parse, each on a NUL-terminated
 * copy of the input.  Besides memory errors and undefined behaviour, it
 * aborts when a parser accepts something it should not:
 *   - tool_parse_int: the value lies in [lo, hi] and is what strtol reads;
 *   - linattn_op_option_parse, for every option of every entry point of the
 *     operator table: a value within the option's range (an integer for
 *     integer, flag, algorithm and feature options; nonzero where 0 is
 *     refused), what strtod reads for numbers, and a refused string leaves
 *     the output untouched and records a message;
 *   - tool_parse_backend, linattn_ela_feature_parse: only the exact names,
 *     and a refused string leaves the output untouched. */
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

static void check_options(const char *s)
{
    for (int i = 0; i < linattn_op_count(); i++) {
        const linattn_op_info *op = linattn_op_at(i);
        for (int j = 0; j < op->noptions; j++) {
            const linattn_op_option *o = &op->options[j];
            double x = 4242.0;
            linattn_clear_error();
            if (linattn_op_option_parse(op, j, s, &x)) {
                if (x != 4242.0 || !linattn_last_error()[0])
                    fail("linattn_op_option_parse failure", s);
                continue;
            }
            if (!isfinite(x) || x < o->lo || x > o->hi || (o->nonzero && x == 0))
                fail("linattn_op_option_parse out of range", s);
            if (o->type != LINATTN_OPT_FLOAT && x != floor(x))
                fail("linattn_op_option_parse not an integer", s);
            if (o->type == LINATTN_OPT_FLOAT || o->type == LINATTN_OPT_INT ||
                o->type == LINATTN_OPT_FLAG) {
                char *end;
                if (strtod(s, &end) != x || *end) fail("linattn_op_option_parse value", s);
            }
        }
    }
}

static void check_names(const char *s)
{
    static const char *const backends[] = {"auto", "ref", "cpu", "opencl"};
    linattn_backend b = (linattn_backend)77;
    if (!tool_parse_backend(s, &b)) {
        if ((int)b < 0 || (size_t)b >= sizeof backends / sizeof *backends || strcmp(backends[b], s))
            fail("tool_parse_backend", s);
    } else if ((int)b != 77) {
        fail("tool_parse_backend wrote on failure", s);
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
    check_options(s);
    check_names(s);
    free(s);
    return 0;
}
