#!/bin/sh
# Lint the manual pages and the sources' references.  Fails (naming the page or
# file, the line and the problem) on
#   - any warning of groff -ww -z -man on a page of man/;
#   - a line of a page that starts with '.' or "'" but is not a request or
#     macro we know: roff takes such a line as a request and drops it
#     (".npy files" at the start of a line vanishes from the output);
#   - a reference to a document that is not part of the distribution (the
#     workshop's notes), anywhere in the README, the pages, or the comments
#     of lib/ opencl/ simd/ tools/ tests/ scripts/.
# Exit 77 (skipped) when groff is not installed.
srcdir=${srcdir:-.}
command -v groff >/dev/null 2>&1 || { echo "manlint: groff not found, skipped"; exit 77; }
fail=0

# requests and man(7) macros that the pages may use
known=' TH SH SS PP LP P IP TP TQ HP RS RE B I BI BR IB IR RB RI SM SB EX EE UR UE MT ME
 SY YS OP nf fi br sp in ti ad na ne ce ft ps ie if el so ds \" '

for page in "$srcdir"/man/man[1-9]/*.[1-9]; do
    [ -f "$page" ] || continue
    name=${page#"$srcdir"/}
    warn=$(LC_ALL=C groff -ww -z -man "$page" 2>&1)
    if [ -n "$warn" ]; then
        printf '%s: groff warnings:\n%s\n' "$name" "$warn"
        fail=1
    fi
    # a control character followed by a name we do not know
    bad=$(awk -v known="$known" '
        /^[.\047]/ {
            s = substr($0, 2); sub(/^[ \t]*/, "", s)
            if (s == "") next                      # an empty request is harmless
            if (substr(s, 1, 2) == "\\\"") next    # a comment
            n = s; sub(/[ \t].*$/, "", n)
            if (index(known, " " n " ") == 0) printf "%d: %s\n", NR, $0
        }' "$page")
    if [ -n "$bad" ]; then
        printf '%s: lines that roff takes as unknown requests (start them with \\& or reflow):\n%s\n' \
            "$name" "$bad"
        fail=1
    fi
done

# references to documents outside the distribution
pattern='spec/|spec [A-Z]?\.?[0-9]|spec part|the spec'"'"'s|DESIGN\.md|shared/|(delta|kalman|ela)\.md'
for d in README.md man lib opencl simd tools tests scripts .ci; do
    [ -e "$srcdir/$d" ] || continue
    find "$srcdir/$d" -type f \( -name '*.[ch]' -o -name '*.cl' -o -name '*.sh' -o -name '*.py' \
        -o -name '*.md' -o -name '*.[1-9]' -o -name run \) ! -name manlint.sh
done | sort | while read -r f; do
    grep -EnH "$pattern" "$f" | sed "s|^$srcdir/||; s|\$|   <- points outside the distribution|"
done > manlint.refs.tmp
if [ -s manlint.refs.tmp ]; then
    cat manlint.refs.tmp
    fail=1
fi
rm -f manlint.refs.tmp
exit $fail
