#!/bin/sh
# linattn-bench --mode onnx (linattn-bench(1)): one prefill row per --T and
# --algo and one decode row per --B, each with a positive time; an unknown
# --update-rule is a usage error (2).  When python3 (or $PYTHON) has
# onnxruntime and onnx, tools/peers/ort_linear_attention.py prints the same
# rows for ONNX Runtime (skipped otherwise: the tool is a measurement aid).
# LINATTN_TOOL_WRAPPER: the emulator of a cross build (TOOL_WRAPPER, see .ci/run).
srcdir=${srcdir:-.}
py=${PYTHON:-python3}
bench=./tools/linattn-bench
[ -x "$bench" ] || { echo "bench_onnx: $bench not built"; exit 99; }
run() { $LINATTN_TOOL_WRAPPER "$bench" "$@"; }
out=$(run --mode onnx --T 8,16 --B 1,3 --H 2 --Hq 4 --K 8 --V 4 --reps 1 --threads 1 \
      --no-limits) || { echo "bench_onnx: linattn-bench --mode onnx failed"; exit 1; }
echo "$out"
rows=$(echo "$out" | awk '$1 == "onnx" && $3 != "" && $12 + 0 > 0 { n++ } END { print n + 0 }')
[ "$rows" = 6 ] || { echo "bench_onnx: $rows timed rows, expected 6 (2 T x 2 algo + 2 B)"; exit 1; }
echo "$out" | awk '$1 == "onnx" && $2 == "decode" && $5 == 3 && $6 == 1 && $7 == 4 &&
                   $8 == 2 && $9 == 8 && $10 == 4 { f = 1 } END { exit !f }' ||
    { echo "bench_onnx: no decode row for B=3 Hq=4 Hkv=2 K=8 V=4"; exit 1; }
for rule in linear gated delta; do
    run --mode onnx --update-rule $rule --gate channel --T 8 --B 2 --H 2 --K 8 --V 4 \
        --reps 1 --threads 1 --no-limits --algo chunk >/dev/null ||
        { echo "bench_onnx: --update-rule $rule --gate channel failed"; exit 1; }
done
run --mode onnx --update-rule nope --no-limits >/dev/null 2>&1
[ $? = 2 ] || { echo "bench_onnx: --update-rule nope is not a usage error"; exit 1; }
if [ -z "${LINATTN_TOOL_WRAPPER:-}" ] &&
        "$py" -c 'import numpy, onnx, onnxruntime' >/dev/null 2>&1; then
    "$py" "$srcdir/tools/peers/ort_linear_attention.py" --T 8 --B 1,3 --H 2 --Hq 4 --K 8 \
        --V 4 --reps 1 --threads 1 ||
        { echo "bench_onnx: tools/peers/ort_linear_attention.py failed"; exit 1; }
else
    echo "bench_onnx: no onnxruntime for $py (or a cross build): the ONNX Runtime peer not run"
fi
echo "bench_onnx: ok"
