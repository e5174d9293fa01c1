#!/bin/sh
# Run the EXAMPLES of linattn-run(1) as a user would paste them: every block
# between .EX and .EE, in order, in one fresh directory, with the tools just
# built first on PATH.  A block preceded by a comment line containing
# "needs-opencl" runs only when linattn-info lists a usable OpenCL device.
# Fails when a block fails; 77 (skipped) without python3 and NumPy (which the
# examples use to make inputs; scripts/install-deps.sh installs them) or in a
# cross build (the tools run under an emulator there).
srcdir=${srcdir:-.}
page=$srcdir/man/man1/linattn-run.1
top=$(pwd)
[ -x "$top/tools/linattn-run" ] || { echo "man_examples: run from the build directory"; exit 99; }
set -- $LINATTN_RUN
[ $# -le 1 ] || { echo "man_examples: cross build (LINATTN_RUN=$LINATTN_RUN), skipped"; exit 77; }
python3 -c 'import numpy' 2>/dev/null || { echo "man_examples: no python3 with numpy, skipped"; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/linattn-examples.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
PATH=$top/tools:$PATH
export PATH

# the blocks, roff escapes undone, each to its own file; "needs-opencl" marks
awk -v dir="$work" '
    /^\.SH/ { ex = ($2 == "EXAMPLES") }
    !ex { next }
    /^\.\\".*needs-opencl/ { cl = 1; next }
    /^\.EX/ { n++; f = sprintf("%s/block%02d%s.sh", dir, n, cl ? ".opencl" : ""); cl = 0; inb = 1; next }
    /^\.EE/ { inb = 0; close(f); next }
    inb {
        s = $0
        gsub(/\\-/, "-", s); gsub(/\\\(aq/, "\047", s); gsub(/\\\(dq/, "\"", s)
        gsub(/\\&/, "", s); gsub(/\\e/, "\\", s)
        print s > f
    }' "$page"
ls "$work"/block*.sh >/dev/null 2>&1 || { echo "man_examples: no .EX/.EE block in EXAMPLES of $page"; exit 1; }

have_cl=0
if linattn-info 2>/dev/null | grep -q '^ *[0-9][0-9]*\.[0-9][0-9]* .*; usable$'; then have_cl=1; fi

fail=0
mkdir "$work/run" && cd "$work/run" || exit 99
for b in "$work"/block*.sh; do
    case $b in
    *.opencl.sh) if [ $have_cl = 0 ]; then echo "--- $(basename "$b"): no usable OpenCL device, not run"; continue; fi ;;
    esac
    echo "--- $(basename "$b"):"
    cat "$b"
    if ! sh -e "$b"; then
        echo "FAIL: this example of linattn-run(1) does not run as written"
        fail=1
    fi
done
exit $fail
