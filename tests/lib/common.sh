# Helpers for the shell tests under tests/shell/. Source it first thing:
#   . "$(dirname "$0")/../lib/common.sh"
# Gives: TOP (checkout), BIN (built binaries), TESTDIR (private temp dir, removed on exit),
# skip / fail / check / wait_for_socket / need_root / need_cmd, and cleanup hooks.
# Exit codes: 0 pass, 77 skip, anything else fail.

set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$TOP/target/debug}
TESTNAME=$(basename "$0" .sh)
TESTDIR=$(mktemp -d "${TMPDIR:-/tmp}/lvmd-$TESTNAME.XXXXXX")
_CLEANUPS=()

at_exit() { _CLEANUPS+=("$*"); }
_run_cleanups() {
    local i
    for ((i = ${#_CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${_CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
    [ -n "${KEEP_TESTDIR:-}" ] || rm -rf "$TESTDIR"
}
trap _run_cleanups EXIT

# A command that fails where nothing checks it (no `||`, `if`, `!`, not before `&&`) fails the
# test and says where: `set -e`, with the line. A test that expects a failure writes the check.
# `set -E`: functions inherit the trap; in a subshell (`$(...)`, `( )`, `&`, `>(...)`) it ends
# that subshell with the status, quietly, and whoever uses the subshell's status judges it.
# The message goes to the test's own stderr (fd saved now): a function called with its output
# sent to /dev/null must not swallow it.
set -E
exec {_TEST_STDERR}>&2
_unchecked() {
    [ "$BASH_SUBSHELL" = 0 ] || exit "$1"
    echo "FAIL: $3: '$2' exited $1 and nothing checked it" >&"$_TEST_STDERR"
    exit 1
}
trap '_unchecked $? "$BASH_COMMAND" "${BASH_SOURCE[0]##*/}:$LINENO"' ERR

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*"; }
# check CMD...: run a command, fail the test with its text if it is false.
check() { "$@" || fail "check failed: $*"; }
need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
need_cmd() { local c; for c in "$@"; do command -v "$c" >/dev/null || skip "needs $c"; done; }

# wait_for_socket PATH [SECONDS]: wait until a UNIX socket exists at PATH.
wait_for_socket() {
    local i n=$(( ${2:-10} * 20 ))
    for ((i = 0; i < n; i++)); do [ -S "$1" ] && return 0; sleep 0.05; done
    fail "socket $1 did not appear"
}

# wait_gone PID [SECONDS]: wait until a process has exited.
wait_gone() {
    local i n=$(( ${2:-10} * 20 ))
    for ((i = 0; i < n; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    return 1
}

# send SOCKET < request: send one framed request with socat, print the reply payload.
send() {
    { cat; printf '\n##\n'; } | socat -t 5 - "UNIX-CONNECT:$1" | sed '/^##$/d'
}
