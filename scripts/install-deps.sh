#!/bin/sh
# Install the Debian packages linattn needs to build, test and benchmark.
# Uses sudo when not run as root.  Extra package names may be given.
set -e
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential autoconf automake libtool pkg-config check \
    libopenblas-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo "$@"
