#!/bin/sh
# Every public function declared in lib/linattn.h must have an alias page
# (man/alias3/FUNCTION.3, made by make from man/aliases.tab and installed in
# man3) that resolves, through its .so line, to a page of man/man3 which
# names the function in its NAME or SYNOPSIS; and the table must name no
# function that the header does not declare.
srcdir=${srcdir:-.}
header=$srcdir/lib/linattn.h
table=$srcdir/man/aliases.tab
fail=0

fns=$(grep -E '^(LINATTN_API )?[a-z_][a-z0-9_ ]*[ *]linattn_[a-z0-9_]+\(' "$header" |
      sed -E 's/^.*[ *](linattn_[a-z0-9_]+)\(.*/\1/' | sort -u)
[ -n "$fns" ] || { echo "man_aliases: no function found in $header"; exit 99; }

work=$(mktemp -d "${TMPDIR:-/tmp}/linattn-aliases.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
mkdir "$work/man3" && cp "$srcdir"/man/man3/*.3 "$work/man3/" || exit 99

for fn in $fns; do
    alias=man/alias3/$fn.3
    if [ ! -f "$alias" ]; then
        echo "$fn: no alias page $alias (add '$fn PAGE' to man/aliases.tab)"
        fail=1; continue
    fi
    line=$(cat "$alias")
    page=${line#.so man3/}
    if [ "$line" = "$page" ] || [ ! -f "$srcdir/man/man3/$page" ]; then
        echo "$fn: $alias is '$line', not '.so man3/PAGE.3' of a page in man/man3"
        fail=1; continue
    fi
    # the page must name the function where man(1) and apropos look
    if ! sed -n '/^\.SH NAME/,/^\.SH DESCRIPTION/p' "$srcdir/man/man3/$page" | grep -qw "$fn"; then
        echo "$fn: $page does not name it in NAME or SYNOPSIS"
        fail=1
    fi
    # and the alias must resolve as man(1) resolves it, from the top of a man tree
    cp "$alias" "$work/man3/$fn.3"
    out=$(cd "$work" && LC_ALL=C groff -ww -z -man "man3/$fn.3" 2>&1)
    if [ -n "$out" ]; then
        echo "$fn: $alias does not render: $out"
        fail=1
    fi
done

for fn in $(sed -e '/^#/d' -e '/^[[:space:]]*$/d' -e 's/[[:space:]].*//' "$table"); do
    echo "$fns" | grep -qx "$fn" || { echo "man/aliases.tab: $fn is not declared in lib/linattn.h"; fail=1; }
done
exit $fail
