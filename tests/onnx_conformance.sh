#!/bin/sh
# ONNX conformance: tests/onnx_conformance.py runs cases through ONNX's own
# reference implementation (onnx.reference.ReferenceEvaluator, opset 27
# LinearAttention) and through tests/onnx_driver (linattn_onnx(3))
# and compares.  Needs python3 (or $PYTHON) with numpy and onnx: without them
# the test is skipped (77), or fails when LINATTN_TEST_ONNX=1 (CI sets it).
# LINATTN_ONNX_BACKENDS: the backends to compare (default "ref cpu", plus
# "opencl" when LINATTN_DEVICE=opencl).
srcdir=${srcdir:-.}
py=${PYTHON:-python3}
driver=./tests/onnx_driver
if ! "$py" -c 'import numpy, onnx.reference; onnx.defs.get_schema("LinearAttention", 27)' \
        >/dev/null 2>&1; then
    msg="onnx_conformance: $py with numpy and onnx (opset 27) not found (pip install onnx)"
    if [ "${LINATTN_TEST_ONNX:-0}" = 1 ]; then
        echo "$msg, and LINATTN_TEST_ONNX=1 requires them"
        exit 1
    fi
    echo "$msg: skipped"
    exit 77
fi
[ -x "$driver" ] || { echo "onnx_conformance: $driver not built"; exit 99; }
backends=${LINATTN_ONNX_BACKENDS:-ref cpu}
case ${LINATTN_DEVICE:-} in opencl*) backends="$backends opencl" ;; esac
# shellcheck disable=SC2086
exec "$py" "$srcdir/tests/onnx_conformance.py" "$driver" $backends
