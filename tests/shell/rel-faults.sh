#!/usr/bin/env bash
# Faults: lvmetad killed with SIGKILL while lvmetad-scan --cache fills it from the bundled PV images
# (at 6 points of the population, each asserted to have landed mid-population), restarted on the
# same socket and pidfile: the next scan
# repopulates through the token protocol and the cache equals a clean population. A scanner that
# died mid-update (token "update in progress", update_timeout 2 s) is taken over by the next one.
# Then 8 scanners at once against a fresh daemon end with the same cache as one clean scan.
# (lvmpolld child killed by a signal -> reason "signal": lvmpolld-options.sh and
# lvmpolld-differential.sh; a cmirrord node killed mid-resync: cmirrord-corosync-3node.sh.)
# timeout: 90
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
need_cmd socat xz strace
IMGS=()
for xz in "$TOP"/tests/data/pv-images/*.img.xz; do
    img=$TESTDIR/$(basename "$xz" .xz)
    xz -dc "$xz" | cp --sparse=always /dev/stdin "$img"
    IMGS+=("$img")
done
# restart: start lvmetad and wait until it answers (the stale socket file exists before it listens).
restart() {
    local i
    start_lvmetad
    for ((i = 0; i < 100; i++)); do
        ask 'request="get_global_info"' 2>/dev/null | grep -q '^response = "OK"' && return 0
        sleep 0.05
    done
    fail "restarted lvmetad does not answer"
}
# The images only: a fresh daemon gets a full repopulation, which would read /dev as well.
printf 'devices {\n\tglobal_filter = [ "r|^/dev/|" ]\n}\n' >"$TESTDIR/images.conf"
scan() { "$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/images.conf" "${IMGS[@]}"; }
# slow_scan: the same scan with every write to a socket or file delayed 30 ms (strace fault
# injection), so a kill can be placed between two requests of the population.
slow_scan() {
    strace -f -qq -o /dev/null -e trace=write,writev,sendto,sendmsg \
        -e inject=write,writev,sendto,sendmsg:delay_enter=30000 \
        "$BIN/lvmetad-scan" --cache -s "$SOCK" --config "$TESTDIR/images.conf" "${IMGS[@]}"
}
# state: what the cache holds, independent of hash order (the dump's lines sorted, and the
# scanner's own view of PVs, VGs and LVs).
state() {
    # the verification section (counters, times) is not cache state
    ask 'request="dump"' | sed '/^# VERIFICATION/,$d' | sort
    "$BIN/lvmetad-scan" --show --json -s "$SOCK" "${IMGS[@]}"
    ask 'request="get_global_info"' | grep -E '^(global_|token|update_pid)'
}

start_lvmetad
scan >/dev/null || fail "clean scan failed"
state >"$TESTDIR/clean"
grep -q 'token = "filter' "$TESTDIR/clean" || fail "no filter token after a clean scan"
stop_lvmetad

# received REQ: how many REQ requests this daemon run has received (its `-l all` wire log).
received() { grep -c "^<- request=\"$1\"" "$TESTDIR/lvmetad.log" || true; }

# Kill points, each "REQUEST:N" = once the daemon has received the N-th REQUEST of the
# population (the scanner sends token_update "update in progress", pv_clear_all, one pv_found per
# image, then the final token_update). The scanner's writes are slowed (slow_scan) and the
# daemon is killed as soon as the point is seen; the kill counts only if it landed
# mid-population: the update had begun and the final token_update never arrived (else that
# point is tried again).
kills=0
for point in token_update:1 pv_clear_all:1 pv_found:1 pv_found:2 pv_found:3 pv_found:4; do
    what=${point%:*} n=${point#*:}
    landed=0
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        : >"$TESTDIR/lvmetad.log"
        start_lvmetad
        slow_scan >"$TESTDIR/scan.out" 2>&1 &
        scanner=$!
        while [ "$(received "$what")" -lt "$n" ] && kill -0 "$scanner" 2>/dev/null; do sleep 0.002; done
        kill -9 "$LVMETAD_PID"
        wait_gone "$LVMETAD_PID" || fail "lvmetad survived SIGKILL"
        got=$(received pv_found)
        rc=0
        wait "$scanner" || rc=$?
        updates=$(received token_update)
        if [ "$updates" = 1 ] && [ "$(received "$what")" -ge "$n" ]; then
            landed=1
            break
        fi
        note "kill after $what #$n missed the population (token_updates received: $updates), again"
        rm -f "$SOCK" "$PIDF"
    done
    [ $landed = 1 ] || fail "no kill after $what #$n landed mid-population in 10 attempts"
    [ $rc != 0 ] || fail "the scanner killed mid-population reported success"
    kills=$((kills + 1))
    # Restart on the stale socket and pidfile: an empty cache whose token forces repopulation.
    restart
    ask 'request="get_global_info"' | grep -q '^token = "none"' || fail "restarted daemon has a token"
    scan >/dev/null || fail "rescan after kill at $point failed"
    state >"$TESTDIR/after"
    diff -u "$TESTDIR/clean" "$TESTDIR/after" || fail "cache after kill at $point differs from a clean population"
    note "kill -9 mid-population after $what #$n ($got pv_found received before; scanner rc $rc): rescan equals a clean population"
    stop_lvmetad
done

# A scanner that died mid-population: "update in progress" held by a dead pid with a 2 s
# update_timeout and half the PVs sent. The next scanner waits for the timeout, takes over and
# leaves the clean cache.
start_lvmetad
ask 'request="token_update"
token="update in progress"
pid=999999
cmd="dead-scanner"
update_timeout=2' | grep -q '^response = "OK"' || fail "could not start an update"
ask 'request="pv_clear_all"
token="update in progress"
pid=999999' | grep -q '^response = "OK"' || fail "pv_clear_all in the dead update"
t0=$(date +%s.%N)
scan >/dev/null || fail "scanner did not take over from a dead one"
state >"$TESTDIR/after"
diff -u "$TESTDIR/clean" "$TESTDIR/after" || fail "cache after taking over from a dead scanner differs"
note "a dead scanner's update taken over after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (its update_timeout 2 s)"
stop_lvmetad

start_lvmetad
pids=()
for i in 1 2 3 4 5 6 7 8; do scan >"$TESTDIR/scan$i.out" 2>&1 & pids+=($!); done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
note "8 concurrent scanners: $ok exited 0; $(cat "$TESTDIR"/scan*.out | grep -vc 'PV(s) sent') other lines:"
cat "$TESTDIR"/scan[1-8].out | sort | uniq -c | sed 's/^/#   /'
[ "$ok" -ge 1 ] || fail "no scanner succeeded"
state >"$TESTDIR/after"
diff -u "$TESTDIR/clean" "$TESTDIR/after" || fail "cache after 8 concurrent scanners differs from a clean population"
kill -0 "$LVMETAD_PID" || fail "lvmetad died"
note "$kills SIGKILLs survived, 8 concurrent scanners consistent"
echo PASS
