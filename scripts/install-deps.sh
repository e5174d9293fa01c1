#!/bin/sh
# Install the Debian packages linattn needs to build, test and benchmark.
# Uses sudo when not run as root.  python3-pytest runs the Python package's
# tests (tests/python_pkg.sh).  python3-numpy: the examples of linattn-run(1)
# and scripts/crosscheck.py make their inputs with it; onnx (from PyPI: Debian's
# is too old for LinearAttention) is the reference of tests/onnx_conformance.sh.
# Extra package names may be given.
set -e
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential autoconf automake libtool pkg-config check \
    libopenblas-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo python3 python3-numpy python3-pip python3-pytest "$@"
# onnx with opset 27 (Debian's own python3 takes pip packages only with
# --break-system-packages)
python3 -c 'import onnx; onnx.defs.get_schema("LinearAttention", 27)' 2>/dev/null ||
    python3 -m pip install -q --upgrade onnx 2>/dev/null ||
    python3 -m pip install -q --break-system-packages --upgrade onnx
