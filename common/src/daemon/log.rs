//! Daemon logging (protocol.md §1.10): `-l` types to stderr in the foreground; fatal and error
//! always to syslog.
//!
//! SKELETON: signatures are fixed; the implementation is being written.

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
        let _ = list;
        todo!("log list")
    }
}

/// Install the process-wide logger (call once, before serving).
pub fn init(name: &str, config: LogConfig, foreground: bool) {
    let _ = (name, config, foreground);
    todo!("log init")
}

/// Log one message of type `t`.
pub fn log(t: LogType, msg: &str) {
    let _ = (t, msg);
}

#[macro_export]
macro_rules! log_error { ($($a:tt)*) => { $crate::daemon::log::log($crate::daemon::log::LogType::Error, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_warn { ($($a:tt)*) => { $crate::daemon::log::log($crate::daemon::log::LogType::Warn, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_info { ($($a:tt)*) => { $crate::daemon::log::log($crate::daemon::log::LogType::Info, &format!($($a)*)) } }
#[macro_export]
macro_rules! log_debug { ($($a:tt)*) => { $crate::daemon::log::log($crate::daemon::log::LogType::Debug, &format!($($a)*)) } }
