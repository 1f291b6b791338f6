//! Daemon logging (docs/protocol.md §1.10): `-l` types to stderr in the foreground; fatal and error
//! always to syslog.
//!
//! Outlets, as lvm2's `daemon-log.c`:
//! - stderr: the types switched on with `-l`, with C's prefixes (`E: `, `W: `, `I: `, none for
//!   wire and debug), and fatal and error always (C sends those to syslog only unless `-l`
//!   names them). Only in the foreground (a daemonized process has stderr on /dev/null).
//! - syslog (`LOG_DAEMON`, tagged with the name and pid): fatal and error always; when not in the
//!   foreground, also the types `-l` switched on (C drops those, since its stderr is /dev/null).
//!   The syslog connection is opened lazily at first use, so a daemonized child logs its own pid.
//!
//! Before [`init`] is called, fatal and error go to stderr only.
#![forbid(unsafe_code)]

use parking_lot::Mutex;
use std::io::Write;
use std::sync::OnceLock;
use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

/// libdaemon's log types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogType {
    Fatal = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Wire = 4,
    Debug = 5,
}

impl LogType {
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
    /// C's stderr prefix for this type.
    fn prefix(self) -> &'static str {
        match self {
            LogType::Fatal | LogType::Error => "E: ",
            LogType::Warn => "W: ",
            LogType::Info => "I: ",
            LogType::Wire | LogType::Debug => "",
        }
    }
}

/// Which types go to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogConfig {
    /// Bit `1 << LogType` set = that type goes to stderr.
    pub stderr_mask: u32,
}

impl LogConfig {
    /// Parse a `-l` list (`all`, `wire`, `debug`, `info`, `warn`, `error`, `fatal`); unknown words
    /// are ignored as C does.
    pub fn parse(list: &str) -> LogConfig {
        let mut mask = 0u32;
        for word in list.split(',').map(str::trim) {
            mask |= match word {
                "all" => u32::MAX,
                "wire" => LogType::Wire.bit(),
                "debug" => LogType::Debug.bit(),
                "info" => LogType::Info.bit(),
                "warn" => LogType::Warn.bit(),
                "error" => LogType::Error.bit(),
                "fatal" => LogType::Fatal.bit(),
                _ => 0,
            };
        }
        LogConfig { stderr_mask: mask }
    }

    /// Whether `-l` switched type `t` on.
    pub fn has(&self, t: LogType) -> bool {
        self.stderr_mask & t.bit() != 0
    }
}

struct LogState {
    name: String,
    config: LogConfig,
    foreground: bool,
    /// `None` until first use; `Some(None)` when no syslog socket could be reached.
    syslog: Mutex<Option<Option<Logger<LoggerBackend, Formatter3164>>>>,
}

static STATE: OnceLock<LogState> = OnceLock::new();

/// Install the process-wide logger (call once, before serving). Later calls are ignored.
pub fn init(name: &str, config: LogConfig, foreground: bool) {
    let _ = STATE.set(LogState {
        name: name.to_owned(),
        config,
        foreground,
        syslog: Mutex::new(None),
    });
}

/// Whether a message of type `t` would go anywhere (to skip building costly messages).
pub fn enabled(t: LogType) -> bool {
    match STATE.get() {
        Some(s) => t <= LogType::Error || s.config.has(t),
        None => t <= LogType::Error,
    }
}

/// Log one message of type `t`.
pub fn log(t: LogType, msg: &str) {
    let Some(s) = STATE.get() else {
        if t <= LogType::Error {
            let _ = writeln!(std::io::stderr().lock(), "{}{msg}", t.prefix());
        }
        return;
    };
    let switched_on = s.config.has(t);
    if s.foreground && (switched_on || t <= LogType::Error) {
        let _ = writeln!(std::io::stderr().lock(), "{}{msg}", t.prefix());
    }
    if t <= LogType::Error || (switched_on && !s.foreground) {
        s.to_syslog(t, msg);
    }
}

/// Wire logging: each line of `text` prefixed with `prefix` (`"<- "` for requests, `"-> "` for
/// replies), as one [`LogType::Wire`] message per line.
pub fn wire(prefix: &str, text: &[u8]) {
    if !enabled(LogType::Wire) {
        return;
    }
    let text = String::from_utf8_lossy(text);
    // Tree replies end in blank lines (the extra "\n\n"); C logs the tree, without them.
    for line in text.trim_end_matches('\n').lines() {
        log(LogType::Wire, &format!("{prefix}{line}"));
    }
}

impl LogState {
    fn to_syslog(&self, t: LogType, msg: &str) {
        let mut guard = self.syslog.lock();
        let logger = guard.get_or_insert_with(|| {
            syslog::unix(Formatter3164 {
                facility: Facility::LOG_DAEMON,
                hostname: None,
                process: self.name.clone(),
                pid: std::process::id(),
            })
            .ok()
        });
        if let Some(l) = logger.as_mut() {
            let msg = msg.to_owned();
            let _ = match t {
                LogType::Fatal => l.crit(msg),
                LogType::Error => l.err(msg),
                LogType::Warn => l.warning(msg),
                LogType::Info => l.info(msg),
                LogType::Wire | LogType::Debug => l.debug(msg),
            };
        }
    }
}

/// Drop the syslog connection so the next message reopens it (after a fork).
pub(crate) fn reopen_syslog() {
    if let Some(s) = STATE.get() {
        *s.syslog.lock() = None;
    }
}

/// Log a message built from `args` if type `t` goes anywhere: the message is formatted only then,
/// so a disabled debug line costs one check (the log macros call this).
pub fn log_args(t: LogType, args: std::fmt::Arguments<'_>) {
    if !enabled(t) {
        return;
    }
    match args.as_str() {
        Some(text) => log(t, text),
        None => log(t, &args.to_string()),
    }
}

/// Bytes shown as [`String::from_utf8_lossy`] would, decoded only when formatted (for log lines
/// built from a child's output).
pub struct Lossy<'a>(pub &'a [u8]);

impl std::fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As `from_utf8_lossy`: one U+FFFD per invalid sequence (no `utf8_chunks` before 1.79).
        let mut rest = self.0;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => return f.write_str(text),
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    f.write_str(std::str::from_utf8(good).unwrap_or_default())?;
                    f.write_str("\u{FFFD}")?;
                    rest = &bad[e.error_len().unwrap_or(bad.len())..];
                }
            }
        }
    }
}

// The macros take `format!` arguments and format them only when their type is enabled (see
// [`log_args`]); every call site uses them.
#[macro_export]
macro_rules! log_fatal { ($($a:tt)*) => { $crate::daemon::log::log_args($crate::daemon::log::LogType::Fatal, format_args!($($a)*)) } }
#[macro_export]
macro_rules! log_error { ($($a:tt)*) => { $crate::daemon::log::log_args($crate::daemon::log::LogType::Error, format_args!($($a)*)) } }
#[macro_export]
macro_rules! log_warn { ($($a:tt)*) => { $crate::daemon::log::log_args($crate::daemon::log::LogType::Warn, format_args!($($a)*)) } }
#[macro_export]
macro_rules! log_info { ($($a:tt)*) => { $crate::daemon::log::log_args($crate::daemon::log::LogType::Info, format_args!($($a)*)) } }
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::daemon::log::log_args($crate::daemon::log::LogType::Debug, format_args!($($a)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists() {
        let c = LogConfig::parse("wire,debug");
        assert!(c.has(LogType::Wire) && c.has(LogType::Debug));
        assert!(!c.has(LogType::Info) && !c.has(LogType::Error));
        let c = LogConfig::parse("all");
        for t in [
            LogType::Fatal,
            LogType::Error,
            LogType::Warn,
            LogType::Info,
            LogType::Wire,
            LogType::Debug,
        ] {
            assert!(c.has(t));
        }
        assert_eq!(c.stderr_mask, u32::MAX);
        let c = LogConfig::parse("bogus,info,,cmd");
        assert_eq!(c.stderr_mask, LogType::Info.bit());
        assert_eq!(LogConfig::parse("").stderr_mask, 0);
        assert_eq!(
            LogConfig::parse("fatal,error,warn").stderr_mask,
            0b111,
            "fatal=0 error=1 warn=2 as C's type numbers"
        );
    }

    /// A value whose `Display` counts how often it was formatted.
    struct Counted(std::sync::atomic::AtomicUsize);
    impl std::fmt::Display for Counted {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            f.write_str("counted")
        }
    }

    #[test]
    fn disabled_messages_are_not_formatted() {
        // Unit tests never switch debug on (the servers they start log with an empty `-l`).
        assert!(!enabled(LogType::Debug));
        let c = Counted(0.into());
        crate::log_debug!("debug {}", c);
        crate::log_debug!("debug {c} {}", 7);
        assert_eq!(
            c.0.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "formatted while off"
        );
        crate::log_error!("error {} (expected in the test output)", c);
        assert_eq!(
            c.0.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "error is always on"
        );
    }

    #[test]
    fn lossy_matches_from_utf8_lossy() {
        for bytes in [
            &b"plain"[..],
            b"a\xffb\xe2\x82",
            b"\xf0\x9f\x92\x96 ok \xc3",
        ] {
            assert_eq!(Lossy(bytes).to_string(), String::from_utf8_lossy(bytes));
        }
    }
}
