# ---- shared body of the sysvinit scripts (make puts it in place of the INIT_FUNCTIONS marker line) ----
#
# Needs only POSIX sh (dash, busybox ash, bash): no /etc/init.d/functions, no lsb-base.
# start-stop-daemon (Debian's or busybox's applet) is used when present unless
# USE_START_STOP_DAEMON=no; both paths give the same result.
#
# The script that includes this sets NAME, DESC, DAEMON, PIDFILE, SOCKET (empty: none),
# DAEMON_ARGS, and defines run_daemon LAUNCHER... which runs LAUNCHER followed by the daemon's
# arguments. It may set AFTER_START to a command run once a start has succeeded (its failure is
# reported, and start still succeeds: the daemon runs).
#
# LSB exit codes: status 0 running, 1 dead but pidfile exists, 3 not running, 4 unknown;
# actions 0 success, 1 failure, 2 bad usage, 3 unimplemented, 5 program not installed.

# init may run us with an empty or minimal PATH
PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export PATH

START_TIMEOUT=${START_TIMEOUT:-10}
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
USE_START_STOP_DAEMON=${USE_START_STOP_DAEMON:-auto}

# The kernel's name for the process (/proc/PID/comm): the program's base name, 15 bytes at most.
PROCNAME=$(printf '%s' "${DAEMON##*/}" | cut -c1-15)

say() { printf '%s\n' "$*"; }

nap() { sleep 0.1 2>/dev/null || sleep 1; }

use_start_stop_daemon() {
    case $USE_START_STOP_DAEMON in
        no) return 1 ;;
        yes) return 0 ;;
        *) command -v start-stop-daemon >/dev/null 2>&1 ;;
    esac
}

# read_pidfile: set pid from $PIDFILE. 0: a pid was read; 1: no pidfile; 2: pidfile holds no pid;
# 4: pidfile not readable.
read_pidfile() {
    pid=
    [ -e "$PIDFILE" ] || return 1
    [ -r "$PIDFILE" ] || return 4
    read -r pid <"$PIDFILE" 2>/dev/null
    case $pid in
        '' | *[!0-9]*) pid= ; return 2 ;;
    esac
    return 0
}

# is_daemon PID: PID is a live (not zombie) process running $PROCNAME.
is_daemon() {
    if [ -d /proc/self ]; then
        [ -r "/proc/$1/stat" ] || return 1
        read -r _stat <"/proc/$1/stat" 2>/dev/null || return 1
        _state=${_stat##*) }
        case $_state in Z* | X*) return 1 ;; esac
        read -r _comm <"/proc/$1/comm" 2>/dev/null || return 1
        [ "$_comm" = "$PROCNAME" ]
    else
        kill -0 "$1" 2>/dev/null
    fi
}

# daemon_status: LSB status code; sets pid when the daemon runs.
daemon_status() {
    read_pidfile
    case $? in
        0) is_daemon "$pid" && return 0
           return 1 ;;
        1) return 3 ;;
        2) return 1 ;;
        *) return 4 ;;
    esac
}

# wait_started: the pidfile names a live daemon and its socket exists.
wait_started() {
    _n=$((START_TIMEOUT * 10))
    while [ "$_n" -gt 0 ]; do
        if daemon_status; then
            [ -z "$SOCKET" ] || [ -S "$SOCKET" ] && return 0
        fi
        _n=$((_n - 1))
        nap
    done
    return 1
}

do_start() {
    if daemon_status; then
        say "$DESC ($NAME) is already running (pid $pid)."
        return 0
    fi
    if [ ! -x "$DAEMON" ]; then
        say "$DESC ($NAME): $DAEMON is not installed."
        return 5
    fi
    if [ -e "$PIDFILE" ]; then
        say "$NAME: removing stale pidfile $PIDFILE${pid:+ (pid $pid is not a running $PROCNAME)}."
        rm -f "$PIDFILE" || return 1
    fi
    mkdir -p "${PIDFILE%/*}" || return 1
    if [ -n "$SOCKET" ]; then
        # lvm2's tmpfiles.d gives the socket directory mode 0700
        [ -d "${SOCKET%/*}" ] || mkdir -p -m 0700 "${SOCKET%/*}" || return 1
    fi

    printf 'Starting %s: %s' "$DESC" "$NAME"
    if use_start_stop_daemon; then
        run_daemon start-stop-daemon -S -q -p "$PIDFILE" -n "$PROCNAME" -x "$DAEMON" --
    else
        run_daemon "$DAEMON"
    fi
    _rc=$?
    if [ "$_rc" -ne 0 ]; then
        say " failed (exit code $_rc)."
        return 1
    fi
    if ! wait_started; then
        say " failed: no running $PROCNAME in $PIDFILE${SOCKET:+ with socket $SOCKET} after ${START_TIMEOUT}s."
        return 1
    fi
    say " (pid $pid)."
    [ -z "${AFTER_START:-}" ] || $AFTER_START
    return 0
}

do_stop() {
    daemon_status
    _st=$?
    case $_st in
        0) ;;
        1) say "$NAME is not running; removing stale pidfile $PIDFILE."
           rm -f "$PIDFILE"
           return 0 ;;
        3) say "$NAME is not running."
           return 0 ;;
        *) say "$NAME: cannot read $PIDFILE."
           return 1 ;;
    esac

    _old=$pid
    printf 'Stopping %s: %s' "$DESC" "$NAME"
    if use_start_stop_daemon; then
        start-stop-daemon -K -q -p "$PIDFILE" -n "$PROCNAME" -s TERM
    else
        kill -TERM "$pid"
    fi
    _n=$((STOP_TIMEOUT * 10))
    while is_daemon "$_old"; do
        if [ "$_n" -le 0 ]; then
            say " failed: pid $_old still running after ${STOP_TIMEOUT}s.${STOP_HINT:+ $STOP_HINT}"
            return 1
        fi
        _n=$((_n - 1))
        nap
    done
    # The daemon removes its pidfile on exit; clean up after one that could not.
    if read_pidfile && [ "$pid" = "$_old" ]; then
        rm -f "$PIDFILE"
    fi
    say "."
    return 0
}

do_status() {
    daemon_status
    _st=$?
    case $_st in
        0) say "$NAME is running (pid $pid)." ;;
        1) say "$NAME is not running, but pidfile $PIDFILE exists." ;;
        3) say "$NAME is not running." ;;
        *) say "$NAME: status unknown (cannot read $PIDFILE)." ;;
    esac
    return "$_st"
}

init_main() {
    case ${1:-} in
        start) do_start ;;
        stop | force-stop) do_stop ;;
        restart | force-reload) do_stop && do_start ;;
        try-restart | condrestart)
            daemon_status || return 0
            do_stop && do_start ;;
        status) do_status ;;
        reload)
            say "$NAME has no configuration to reload; use restart."
            return 3 ;;
        *)
            say "Usage: $0 {start|stop|status|restart|try-restart|force-reload}" >&2
            return 2 ;;
    esac
}
# ---- end of the shared body ----
