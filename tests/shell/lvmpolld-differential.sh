#!/usr/bin/env bash
# Differential test: one scripted sequence of requests (every request type, abort, sysdir,
# duplicates, errors, progress after finish, unknown and garbage requests) sent to Debian's C
# /sbin/lvmpolld and to ours, both running the same fake lvm (-B). The raw reply bytes must be
# identical apart from PIDs, and so must the lvpoll command lines and environments both spawned.
# timeout: 90
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmpolld.sh"
need_cmd socat
[ -x "$C_LVMPOLLD" ] || skip "needs Debian's $C_LVMPOLLD (package lvm2)"
[ -x "$BIN/lvmpolld" ] || fail "no $BIN/lvmpolld: build first"

L=FAKEVGxxxxxxxxxxxxxxxxxxxxxxxxxxLV00000000000000000000000000000
SYS=/srv/ref/etc/lvm

# scenario SOCKET: the request sequence; writes the transcript to stdout.
scenario() {
    local s=$1
    r() { # one recorded request: stdin is the payload
        local body; body=$(cat)
        printf "=== request\n%s\n=== reply\n" "$body"
        printf '%s\n' "$body" | polld_raw "$s"
        printf '\n'
    }
    pi() { # poll-init: TYPE LVID LVNAME INTERVAL [extra lines]
        local t=$1 id=$2 lv=$3 iv=$4; shift 4
        printf 'request = "%s"\nlvid = "%s"\nvgname = "vg"\nlvname = "%s"\ninterval = "%s"\ncmdline = "scenario %s vg/%s"\n%s' \
            "$t" "$id" "$lv" "$iv" "$t" "$lv" "$(printf '%s\n' "$@")" | r
    }
    prog() { # progress_info LVID [extra lines]
        local id=$1; shift
        printf 'request = "progress_info"\nlvid = "%s"\n%s' "$id" "$(printf '%s\n' "$@")" | r
    }
    dump() { echo 'request = "dump"' | r; }

    echo 'request = "hello"' | r
    dump
    prog "${L}1"
    pi pvmove "${L}1" lvslow-4000-0 1
    prog "${L}1"
    pi pvmove "${L}1" lvslow-4000-0 1                 # identical: joins, no second child
    pi convert "${L}1" lvslow-4000-0 1                # different operation on the same LV
    dump
    polld_wait_finished "$s" "${L}1"
    dump
    prog "${L}1"                                      # finished, handed out once
    prog "${L}1"                                      # then not_found
    pi merge "${L}2" lvfast-100-0 1
    polld_wait_finished "$s" "${L}2"
    pi merge "${L}2" lvfast-100-0 1                   # replaces the uncollected result
    polld_wait_finished "$s" "${L}2"
    dump
    prog "${L}2"
    pi merge_thin "${L}3" lvfail-100-5 1
    polld_wait_finished "$s" "${L}3"
    prog "${L}3"                                      # retcode 5
    pi convert "${L}4" lvsig-100-sig9 1 'handle_missing_pvs = 1'
    polld_wait_finished "$s" "${L}4"
    prog "${L}4"                                      # signal 9
    pi pvmove "${L}5" lvabort-3000-0 0 'abort = 1' "sysdir = \"$SYS\""
    prog "${L}5"                                      # wrong store and no sysdir
    prog "${L}5" 'abort = 1'                          # no sysdir: other ID
    prog "${L}5" 'abort = 1' "sysdir = \"$SYS\""      # in_progress
    dump
    polld_wait_finished "$s" "$SYS${L}5"
    # the real client's tree-writer form
    printf 'request="progress_info"\nsysdir ="%s"\nabort =1\nlvid ="%s"\n' "$SYS" "${L}5" | r
    pi pvmove "${L}6" lvsys-100-0 '+2' "sysdir = \"/tmp/other-sysdir\""
    polld_wait_finished "$s" "/tmp/other-sysdir${L}6"
    prog "${L}6"
    prog "${L}6" 'sysdir = "/tmp/other-sysdir"'
    pi pvmove "${L}7" lvlong-1200-0 100                # internal timeout 200
    dump
    polld_wait_finished "$s" "${L}7"
    prog "${L}7"
    # intervals as sscanf("%u") reads them: leading blanks and trailing junk, and 32-bit overflow
    pi pvmove "${L}9" lvodd-1200-0 ' 7x'
    dump
    polld_wait_finished "$s" "${L}9"
    prog "${L}9"
    pi merge "${L}10" lvhuge-1200-0 99999999999
    dump
    polld_wait_finished "$s" "${L}10"
    prog "${L}10"
    # errors, in the order C checks them
    pi convert "${L}8" lv8 1 'abort = 1'
    printf 'request = "pvmove"\nlvid = "%s"\nvgname = "vg"\nlvname = "lv"\n' "${L}8" | r
    printf 'request = "pvmove"\nlvid = "%s"\nvgname = "vg"\nlvname = "lv"\ninterval = 1\n' "${L}8" | r
    pi pvmove "${L}8" lv8 -1
    pi pvmove "${L}8" lv8 abc
    pi pvmove "${L}8" lv8 ''
    printf 'request = "pvmove"\nvgname = "vg"\nlvname = "lv"\ninterval = "1"\n' | r
    printf 'request = "pvmove"\nlvid = "x"\nlvname = "lv"\ninterval = "1"\n' | r
    printf 'request = "pvmove"\nlvid = "x"\nvgname = "vg"\ninterval = "1"\n' | r
    printf 'request = "merge"\nlvid = "x"\ninterval = "1"\n' | r
    echo 'request = "progress_info"' | r
    echo 'request = "frobnicate"' | r
    echo 'this is { garbage' | r
    printf 'request = "progress_info"\nlvid = "%s"\nabort = "1"\n' "${L}1" | r
    dump
}

normalize() { sed -E 's/lvm_command_pid=[0-9]+/lvm_command_pid=PID/'; }
calls() { sed -E 's/^pid=[0-9]+ start=[0-9]+ //' "$1" | sed "s|$FAKE_LVM|FAKE|" | sort; }

polld_start c "$C_LVMPOLLD"
scenario "$TESTDIR/c.socket" | normalize >"$TESTDIR/c.out"
polld_start rust "$BIN/lvmpolld"
scenario "$TESTDIR/rust.socket" | normalize >"$TESTDIR/rust.out"

note "$(grep -c "^=== request" "$TESTDIR/c.out") requests, $(wc -c <"$TESTDIR/c.out") transcript bytes"
if ! cmp -s "$TESTDIR/c.out" "$TESTDIR/rust.out"; then
    diff -u "$TESTDIR/c.out" "$TESTDIR/rust.out" | head -60
    fail "replies differ between C lvmpolld and ours"
fi
calls "$TESTDIR/c.calls" >"$TESTDIR/c.calls.n"
calls "$TESTDIR/rust.calls" >"$TESTDIR/rust.calls.n"
check test -s "$TESTDIR/c.calls.n"
if ! cmp -s "$TESTDIR/c.calls.n" "$TESTDIR/rust.calls.n"; then
    diff -u "$TESTDIR/c.calls.n" "$TESTDIR/rust.calls.n"
    fail "spawned lvpoll commands differ"
fi
note "lvpoll calls: $(wc -l <"$TESTDIR/c.calls.n"), identical"
# every child's output reached the log
check grep -q "LVPOLL: PID [0-9]*: STDOUT: '  vg/lvslow-4000-0: Moved: 0.00%'" "$TESTDIR/rust.log"
check grep -q "LVPOLL: PID [0-9]*: STDERR: 'fake-lvm: note on stderr" "$TESTDIR/rust.log"
echo "differential: identical"
