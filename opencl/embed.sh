#!/bin/sh
# Turn an OpenCL C file into a C string constant: embed.sh NAME FILE > OUT.h
set -e
echo "/* generated from $(basename "$2") by opencl/embed.sh: do not edit */"
echo "static const char $1[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$2"
echo ";"
