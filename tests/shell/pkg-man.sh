#!/usr/bin/env bash
# Shows: every man page (lvmetad.8, lvmpolld.8, cmirrord.8, lvmetactl.8, lvmetad-scan.8), as make
# generates it with lvm2's default paths, renders without a single message from mandoc -T lint
# (style included) or groff -ww; and every option each program lists in its own help, and every
# lvmetactl command, is documented in its page.
# timeout: 60
. "$(dirname "$0")/../lib/common.sh"
need_cmd mandoc groff make

# Generate the pages out of tree with the defaults (no cargo build needed for `make man`).
build=$TESTDIR/build
mkdir -p "$build"
(cd "$build" && "$TOP/configure" -q --prefix=/usr >/dev/null) || fail "configure failed"
make -C "$build" --no-print-directory man MANPAGES="man/lvmetad.8 man/lvmpolld.8 man/cmirrord.8 man/lvmetactl.8 man/lvmetad-scan.8" \
    >"$TESTDIR/make.log" 2>&1 || { cat "$TESTDIR/make.log"; fail "make man failed"; }

pages="lvmetad lvmpolld cmirrord lvmetactl lvmetad-scan"
for p in $pages; do
    f=$build/man/$p.8
    [ -s "$f" ] || fail "$p.8 was not generated"
    grep -n '@[A-Za-z_]*@' "$f" && fail "$p.8: unsubstituted names"
    grep -q '/run/lvm' "$f" || [ "$p" = cmirrord ] || fail "$p.8 does not name the default run dir"
    out=$(mandoc -T lint -W all "$f" 2>&1)
    [ -z "$out" ] || fail "mandoc -T lint $p.8: $out"
    out=$(groff -ww -z -man -Tutf8 "$f" 2>&1)
    [ -z "$out" ] || fail "groff -ww $p.8: $out"
    # the page renders to real text, with its NAME section first
    groff -man -Tutf8 -P-cbou "$f" 2>/dev/null | grep -q "^NAME" || fail "$p.8 does not render"
done

# Every option a program's help lists appears in its page (as \-x or \-\-long).
doc_has() { grep -qF -- "$2" "$build/man/$1.8"; }
for p in lvmetad lvmpolld cmirrord lvmetad-scan; do
    exe=$BIN/$p
    [ -x "$exe" ] || fail "$exe not built"
    help=$("$exe" -h 2>&1 </dev/null; "$exe" --help 2>&1 </dev/null)
    opts=$(grep -oE '(^|[][ ,|{(])--?[A-Za-z?][A-Za-z-]*' <<<"$help" | sed 's/^[][ ,|{(]//' | sort -u)
    [ -n "$opts" ] || fail "$p -h lists no options: $help"
    for o in $opts; do
        doc_has "$p" "$(sed 's/-/\\-/g' <<<"$o")" || fail "$p.8 does not document $o (from $p -h)"
    done
    note "$p.8 documents: $(echo $opts)"
done

# lvmetactl: every command in its usage is in the page, and every command in the page is known
# to the program (it does not answer "unknown command" to it).
exe=$BIN/lvmetactl
[ -x "$exe" ] || fail "$exe not built"
usage=$("$exe" 2>&1 </dev/null || true; "$exe" --help 2>&1 </dev/null)
cmds=$(grep -oE '\b(dump|[a-z]+_[a-z_]+)\b' <<<"$usage" | sort -u)
[ -n "$cmds" ] || fail "lvmetactl prints no commands: $usage"
for c in $cmds; do
    doc_has lvmetactl "$c" || fail "lvmetactl.8 does not document $c"
done
for c in $(sed -n 's/^\.BI\{0,1\}R\{0,1\} \([a-z_]*\).*/\1/p' "$build/man/lvmetactl.8" | grep _ | sort -u); do
    grep -qw "$c" <<<"$usage" || fail "lvmetactl.8 documents $c, which lvmetactl's usage does not list"
done
note "lvmetactl.8 documents: $(echo $cmds)"
echo "ok"
