#!/bin/sh
# Install the Debian packages linattn needs to build, test and benchmark.
# Uses sudo when not run as root.  python3-numpy: the examples of linattn-run(1)
# and scripts/crosscheck.py make their inputs with it.  Extra package names may be given.
set -e
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential autoconf automake libtool pkg-config check \
    libopenblas-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo python3 python3-numpy "$@"
