#!/usr/bin/env bash
# Faults: lvmetad killed with SIGKILL while lvmetad-scan --cache fills it from the bundled PV images
# (at 6 points of the population), restarted on the same socket and pidfile: the next scan
# repopulates through the token protocol and the cache equals a clean population. A scanner that
# died mid-update (token "update in progress", update_timeout 2 s) is taken over by the next one.
# Then 8 scanners at once against a fresh daemon end with the same cache as one clean scan.
# (lvmpolld child killed by a signal -> reason "signal": lvmpolld-options.sh and
# lvmpolld-differential.sh; a cmirrord node killed mid-resync: cmirrord-corosync-3node.sh.)
# timeout: 90
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/lvmetad.sh"
need_cmd socat xz
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
# state: what the cache holds, independent of hash order (the dump's lines sorted, and the
# scanner's own view of PVs, VGs and LVs).
state() {
    ask 'request="dump"' | sort
    "$BIN/lvmetad-scan" --show --json -s "$SOCK" "${IMGS[@]}"
    ask 'request="get_global_info"' | grep -E '^(global_|token|update_pid)'
}

start_lvmetad
scan >/dev/null || fail "clean scan failed"
state >"$TESTDIR/clean"
grep -q 'token = "filter' "$TESTDIR/clean" || fail "no filter token after a clean scan"
stop_lvmetad

kills=0
for delay in 0 0.002 0.005 0.01 0.02 0.05; do
    start_lvmetad
    scan >"$TESTDIR/scan.out" 2>&1 &
    scanner=$!
    sleep "$delay"
    kill -9 "$LVMETAD_PID"
    wait "$scanner"; rc=$?
    wait_gone "$LVMETAD_PID" || fail "lvmetad survived SIGKILL"
    kills=$((kills + 1))
    # Restart on the stale socket and pidfile: an empty cache whose token forces repopulation.
    restart
    ask 'request="get_global_info"' | grep -q '^token = "none"' || fail "restarted daemon has a token"
    scan >/dev/null || fail "rescan after kill at ${delay}s failed"
    state >"$TESTDIR/after"
    diff -u "$TESTDIR/clean" "$TESTDIR/after" || fail "cache after kill at ${delay}s differs from a clean population"
    note "kill -9 at ${delay}s (scanner rc $rc): rescan equals a clean population"
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
