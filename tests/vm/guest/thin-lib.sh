# Helpers for the guest-side thin-pool scripts (sourced inside the QEMU guest, after
# tests/lib/common.sh). Needs BIN (the host's target/debug, exported with run-in-vm.sh -e).

[ "${IN_VM:-0}" = 1 ] || { echo "run me through tests/vm/run-in-vm.sh" >&2; exit 2; }
[ -x "$BIN/dm-thin-msg" ] || fail "no $BIN/dm-thin-msg: build on the host first"
T() { "$BIN/dm-thin-msg" "$@"; }

# dmsetup's view of every thin-pool and thin target, written the way `dm-thin-msg status`
# prints its parse: the fields are split here by position, independently of our parser.
dmsetup_thin_view() { # every device, `name: start length type status...`
    dmsetup status | awk '
        {
            name = $1; sub(/:$/, "", name)
            if ($4 == "thin-pool") {
                if ($5 == "Fail" || $5 == "Error") { print name, "thin-pool status=" $5; next }
                split($6, m, "/"); split($7, d, "/")
                nc = ($12 == "needs_check") ? "yes" : "no"
                lw = ($13 == "") ? "-" : $13
                printf "%s thin-pool transaction_id=%s used_metadata_blocks=%s total_metadata_blocks=%s used_data_blocks=%s total_data_blocks=%s held_metadata_root=%s mode=%s discards=%s no_space=%s needs_check=%s metadata_low_watermark=%s\n", name, $5, m[1], m[2], d[1], d[2], $8, $9, $10, $11, nc, lw
            } else if ($4 == "thin") {
                if ($5 == "Fail" || $5 == "Error") { print name, "thin status=" $5; next }
                printf "%s thin mapped_sectors=%s highest_mapped_sector=%s\n", name, $5, $6
            }
        }' | sort
}

# agree [WHAT]: our parse of every thin device equals dmsetup's, field by field; prints the view.
agree() {
    local ours theirs
    ours=$(T status | sort) || fail "dm-thin-msg status failed"
    theirs=$(dmsetup_thin_view)
    if [ "$ours" != "$theirs" ]; then
        diff <(echo "$theirs") <(echo "$ours") | sed 's/^/    /'
        fail "parser disagrees with dmsetup status ${1:-}"
    fi
    [ -n "$ours" ] || fail "no thin devices seen ${1:-}"
    local lines
    mapfile -t lines <<<"$ours"
    echo "agree ${1:-}: ${#lines[@]} thin/thin-pool device(s), every field equal"
}

# expect_tid POOL N: `dmsetup status POOL` shows transaction id N.
expect_tid() {
    local _start _len _type t _rest
    read -r _start _len _type t _rest < <(dmsetup status "$1")
    [ "$t" = "$2" ] || fail "$1: dmsetup status shows transaction id $t, expected $2"
    echo "transaction id of $1 is $2"
}
