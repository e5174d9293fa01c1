#!/bin/sh
# linattn test: the shared library exports exactly the functions declared in
# lib/linattn.h, nothing internal and nothing missing.  Compares the defined
# dynamic symbols of the built liblinattn.so (nm -D --defined-only) with the
# function names parsed from the header, and names every difference.
# Skipped (exit 77) when no shared library was built (--disable-shared) or
# nm cannot read it.
srcdir=${srcdir:-.}
header=$srcdir/lib/linattn.h
la=lib/liblinattn.la
nm=${NM:-nm}
dlname=$(sed -n "s/^dlname='\(.*\)'$/\1/p" "$la" 2>/dev/null)
if test -z "$dlname" || test ! -f "lib/.libs/$dlname"; then
    echo "SKIP: no shared library built (configure --disable-shared)"
    exit 77
fi
so=lib/.libs/$dlname
tmp=${TMPDIR:-/tmp}/linattn-exports.$$
trap 'rm -f "$tmp".*' EXIT
if ! $nm -D --defined-only "$so" >"$tmp.nm" 2>"$tmp.err"; then
    echo "SKIP: $nm -D cannot read $so: $(cat "$tmp.err")"
    exit 77
fi
# symbol names, without ELF symbol versions (name@@VERSION)
awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' "$tmp.nm" | sort -u >"$tmp.so"
# declared functions: comments removed, lines joined, every linattn_name(
# (a function-pointer typedef "(*linattn_fn)(" does not match: ")" precedes "(")
awk '{ text = text $0 "\n" }
     END { while ((i = index(text, "/*")) > 0) {
               printf "%s ", substr(text, 1, i - 1)
               text = substr(text, i + 2)
               j = index(text, "*/"); text = j ? substr(text, j + 2) : "" }
           printf "%s", text }' "$header" | sed -e 's://.*$::' | tr '\n' ' ' |
    grep -o 'linattn_[A-Za-z0-9_]*[[:space:]]*(' | sed -e 's/[[:space:]]*($//' |
    sort -u >"$tmp.h"
extra=$(comm -23 "$tmp.so" "$tmp.h")
missing=$(comm -13 "$tmp.so" "$tmp.h")
nso=$(wc -l <"$tmp.so"); nh=$(wc -l <"$tmp.h")
echo "$so exports $nso symbols; $header declares $nh functions"
status=0
if test -n "$extra"; then
    echo "FAIL: $(echo "$extra" | wc -l) exported symbols not declared in linattn.h:"
    echo "$extra" | sed 's/^/  /'
    status=1
fi
if test -n "$missing"; then
    echo "FAIL: $(echo "$missing" | wc -l) functions of linattn.h not exported:"
    echo "$missing" | sed 's/^/  /'
    status=1
fi
test $status = 0 && echo "ok: the exports are the API"
exit $status
