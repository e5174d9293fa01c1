#!/bin/sh
# Inputs take const arrays without casts, in C and in C++: a program that
# describes const float arrays as tensors (through the constructors and by
# assigning .data) must compile warning-free against lib/linattn.h with the
# C compiler and with a C++ compiler (g++ refused it while .data was a
# non-const pointer).  Skipped (77) when no C++ compiler is found.
srcdir=${srcdir:-.}
CC=${CC:-cc}
CXX=${CXX:-g++}
work=$(mktemp -d "${TMPDIR:-/tmp}/linattn-const.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
cat >"$work/prog.c" <<'PROG'
#include <linattn.h>
int use(const float *q, const float *k, const float *v, const float *beta, float *o)
{
    linattn_delta_io io;
    linattn_tensor t = linattn_tensor_none();
    t.data = q;                       /* assignment of a const pointer */
    t.ndim = 4;
    io.q = t;
    io.k = linattn_tensor_4d(k, 1, 2, 1, 4);
    io.v = linattn_tensor_4d(v, 1, 2, 1, 4);
    io.beta = linattn_tensor_3d(beta, 1, 2, 1);
    io.o = linattn_tensor_4d(o, 1, 2, 1, 4);
    return io.q.ndim + (int)io.k.shape[3] + (io.v.data == v) + (io.o.data == o) +
           (io.beta.data != 0);
}
PROG
cp "$work/prog.c" "$work/prog.cc"
fail=0
$CC -std=c11 -Wall -Wextra -Werror -I"$srcdir/lib" -c "$work/prog.c" -o "$work/c.o" ||
    { echo "C: const inputs do not compile"; fail=1; }
if command -v "$CXX" >/dev/null 2>&1; then
    $CXX -Wall -Wextra -Werror -I"$srcdir/lib" -c "$work/prog.cc" -o "$work/cc.o" ||
        { echo "C++: const inputs do not compile"; fail=1; }
else
    echo "no C++ compiler ($CXX): the C++ half is skipped"
    [ $fail = 0 ] && exit 77
fi
[ $fail = 0 ] && echo "ok: const inputs compile in C and C++"
exit $fail
