#!/bin/sh
# linattn test: a fully static program must run, with OpenCL counted as
# absent (tests/static_demo.c).  Skipped (exit 77) when configure could not
# link static programs (no libc.a, libopenblas.a, libgomp.a, or
# --disable-static); the configure summary says which.
if test "x$LINATTN_STATIC_DEMO" != xyes; then
    echo "SKIP: configure found that fully static programs cannot be linked here"
    exit 77
fi
# LINATTN_TOOL_WRAPPER: the emulator of a cross build (TOOL_WRAPPER, see .ci/run)
exec $LINATTN_TOOL_WRAPPER ./tests/static_demo
