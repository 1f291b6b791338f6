//! The seam between the request handler and the processes: a [`Launcher`] runs and stops the
//! `lvm lvpoll` commands of entries. The real one is `watcher::ChildWatcher`; [`NoLauncher`]
//! starts nothing (tests, the fuzz target).
#![forbid(unsafe_code)]

use crate::command::LvpollCommand;
use crate::store::Entry;
use std::sync::Arc;

/// Runs and stops the commands of entries. Implementations report the end of each command with
/// [`crate::store::Registry::finish`] on the registry they were built with.
pub trait Launcher: Send + Sync {
    /// Start `cmd` for the new entry `entry`.
    fn launch(&self, entry: Arc<Entry>, cmd: LvpollCommand);
    /// Send SIGTERM to the command of `entry` if it still runs.
    fn terminate(&self, entry: &Arc<Entry>);
    /// Stop every command (SIGTERM), then wait until all have been reaped.
    fn shutdown(&self);
}

/// A launcher that starts nothing: entries stay in progress until a test finishes them.
#[derive(Debug, Default)]
pub struct NoLauncher;

impl Launcher for NoLauncher {
    fn launch(&self, _: Arc<Entry>, _: LvpollCommand) {}
    fn terminate(&self, _: &Arc<Entry>) {}
    fn shutdown(&self) {}
}
