#!/bin/sh
# The Python package (python/linattn) and its pytest suite (python/tests),
# run against this build's shared library (LINATTN_LIBRARY).  Needs python3
# (or $PYTHON) with numpy and pytest; onnx (opset 27) for the ONNX tests.
# Without numpy or pytest the test is skipped (77), or fails when
# LINATTN_TEST_PYTHON=1 (CI sets it).  A build without the shared library
# (--disable-shared, cross builds) is skipped: ctypes loads only a .so.
srcdir=${srcdir:-.}
py=${PYTHON:-python3}
lib=$PWD/lib/.libs/liblinattn.so
if ! "$py" -c 'import numpy, pytest' >/dev/null 2>&1; then
    msg="python_pkg: $py with numpy and pytest not found (apt-get install python3-numpy python3-pytest)"
    if [ "${LINATTN_TEST_PYTHON:-0}" = 1 ]; then
        echo "$msg, and LINATTN_TEST_PYTHON=1 requires them"
        exit 1
    fi
    echo "$msg: skipped"
    exit 77
fi
if [ -n "${LINATTN_TOOL_WRAPPER:-}" ] || [ ! -f "$lib" ]; then
    echo "python_pkg: no shared library $lib for this host (static or cross build): skipped"
    exit 77
fi
# the source tree may be read-only (distcheck): no caches or bytecode there
LINATTN_LIBRARY=$lib PYTHONDONTWRITEBYTECODE=1 \
    exec "$py" -m pytest -q -rs -p no:cacheprovider "$srcdir/python/tests"
