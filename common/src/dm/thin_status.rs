//! Parsers for the status lines of the `thin-pool` and `thin` targets (docs/protocol.md §8.6).
//! No I/O: they take the text after `START LENGTH TYPE` and return every field, typed.
//!
//! thin-pool: `<transaction_id> <used_meta>/<total_meta> <used_data>/<total_data> <held_root|->
//! [<rw|ro|out_of_data_space> <discard mode> <no-space policy> <needs_check|-> [<meta threshold>]]`,
//! or `Fail` / `Error`. Older kernels stop after the held root; the missing fields then take the
//! kernel's defaults. Unlike libdm (substring search, held root ignored) every token is checked
//! in its place and the held metadata root is reported.
//!
//! thin: `<mapped_sectors> <highest_mapped_sector|->`, or `Fail` / `Error`.
#![forbid(unsafe_code)]

use std::fmt;

use super::types::Sectors;

/// A thin-pool status line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusError {
    pub target: &'static str,
    pub field: &'static str,
    pub found: String,
}

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.found.is_empty() {
            write!(f, "{} status: missing {}", self.target, self.field)
        } else {
            write!(
                f,
                "{} status: bad {}: {:?}",
                self.target, self.field, self.found
            )
        }
    }
}

impl std::error::Error for StatusError {}

/// The pool's operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    ReadWrite,
    ReadOnly,
    /// Data space is exhausted: writes to unprovisioned blocks queue or error, metadata works.
    OutOfDataSpace,
}

/// What the pool does with discards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscardMode {
    Ignore,
    Passdown,
    NoPassdown,
}

/// What happens to writes when the data device is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSpacePolicy {
    Queue,
    Error,
}

/// Every field of a working pool's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinPoolUsage {
    pub transaction_id: u64,
    /// Metadata blocks are 4 KiB.
    pub used_metadata_blocks: u64,
    pub total_metadata_blocks: u64,
    /// Data blocks are the pool's data block size.
    pub used_data_blocks: u64,
    pub total_data_blocks: u64,
    /// Metadata block of the held root (a reserved metadata snapshot), if one is held.
    pub held_metadata_root: Option<u64>,
    pub mode: PoolMode,
    pub discards: DiscardMode,
    pub no_space: NoSpacePolicy,
    pub needs_check: bool,
    /// Free metadata blocks below which the kernel warns (newer kernels only).
    pub metadata_low_watermark: Option<u64>,
}

/// A `thin-pool` status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinPoolStatus {
    Working(ThinPoolUsage),
    /// The pool is in fail mode.
    Fail,
    /// The kernel could not gather the status.
    Error,
}

/// A `thin` status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinStatus {
    Working {
        mapped: Sectors,
        /// Last mapped sector, `None` when nothing is mapped.
        highest_mapped: Option<Sectors>,
    },
    Fail,
    Error,
}

fn err(target: &'static str, field: &'static str, found: &str) -> StatusError {
    StatusError {
        target,
        field,
        found: found.to_string(),
    }
}

fn number(
    target: &'static str,
    field: &'static str,
    tok: Option<&str>,
) -> Result<u64, StatusError> {
    let t = tok.unwrap_or("");
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(target, field, t));
    }
    t.parse().map_err(|_| err(target, field, t))
}

fn ratio(
    target: &'static str,
    field: &'static str,
    tok: Option<&str>,
) -> Result<(u64, u64), StatusError> {
    let t = tok.unwrap_or("");
    let (a, b) = t.split_once('/').ok_or_else(|| err(target, field, t))?;
    let used = number(target, field, Some(a)).map_err(|_| err(target, field, t))?;
    let total = number(target, field, Some(b)).map_err(|_| err(target, field, t))?;
    Ok((used, total))
}

impl ThinPoolStatus {
    pub fn parse(params: &str) -> Result<Self, StatusError> {
        const T: &str = "thin-pool";
        let mut toks = params.split_ascii_whitespace();
        let first = toks.next();
        match first {
            Some("Fail") => return Ok(ThinPoolStatus::Fail),
            Some("Error") => return Ok(ThinPoolStatus::Error),
            _ => {}
        }
        let transaction_id = number(T, "transaction id", first)?;
        let (used_metadata_blocks, total_metadata_blocks) =
            ratio(T, "metadata usage", toks.next())?;
        let (used_data_blocks, total_data_blocks) = ratio(T, "data usage", toks.next())?;
        let held_metadata_root = match toks.next() {
            Some("-") => None,
            t => Some(number(T, "held metadata root", t)?),
        };
        let mut usage = ThinPoolUsage {
            transaction_id,
            used_metadata_blocks,
            total_metadata_blocks,
            used_data_blocks,
            total_data_blocks,
            held_metadata_root,
            mode: PoolMode::ReadWrite,
            discards: DiscardMode::Passdown,
            no_space: NoSpacePolicy::Queue,
            needs_check: false,
            metadata_low_watermark: None,
        };
        let Some(mode) = toks.next() else {
            return Ok(ThinPoolStatus::Working(usage));
        };
        usage.mode = match mode {
            "rw" => PoolMode::ReadWrite,
            "ro" => PoolMode::ReadOnly,
            "out_of_data_space" => PoolMode::OutOfDataSpace,
            other => return Err(err(T, "mode", other)),
        };
        let t = toks.next();
        usage.discards = match t {
            Some("ignore_discard") => DiscardMode::Ignore,
            Some("discard_passdown") => DiscardMode::Passdown,
            Some("no_discard_passdown") => DiscardMode::NoPassdown,
            other => return Err(err(T, "discard mode", other.unwrap_or(""))),
        };
        let t = toks.next();
        usage.no_space = match t {
            Some("queue_if_no_space") => NoSpacePolicy::Queue,
            Some("error_if_no_space") => NoSpacePolicy::Error,
            other => return Err(err(T, "no-space policy", other.unwrap_or(""))),
        };
        usage.needs_check = match toks.next() {
            // Kernels between the policy field and needs_check stop here.
            None => return Ok(ThinPoolStatus::Working(usage)),
            Some("needs_check") => true,
            Some("-") => false,
            Some(other) => return Err(err(T, "needs_check flag", other)),
        };
        if let Some(t) = toks.next() {
            usage.metadata_low_watermark = Some(number(T, "metadata low watermark", Some(t))?);
        }
        if let Some(extra) = toks.next() {
            return Err(err(T, "end of line", extra));
        }
        Ok(ThinPoolStatus::Working(usage))
    }

    /// The usage of a working pool.
    pub fn usage(&self) -> Option<&ThinPoolUsage> {
        match self {
            ThinPoolStatus::Working(u) => Some(u),
            _ => None,
        }
    }
}

impl ThinStatus {
    pub fn parse(params: &str) -> Result<Self, StatusError> {
        const T: &str = "thin";
        let mut toks = params.split_ascii_whitespace();
        let first = toks.next();
        let status = match first {
            Some("Fail") => ThinStatus::Fail,
            Some("Error") => ThinStatus::Error,
            _ => {
                let mapped = Sectors(number(T, "mapped sectors", first)?);
                let highest_mapped = match toks.next() {
                    Some("-") => None,
                    t => Some(Sectors(number(T, "highest mapped sector", t)?)),
                };
                ThinStatus::Working {
                    mapped,
                    highest_mapped,
                }
            }
        };
        if let Some(extra) = toks.next() {
            return Err(err(T, "end of line", extra));
        }
        Ok(status)
    }
}

impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoolMode::ReadWrite => "rw",
            PoolMode::ReadOnly => "ro",
            PoolMode::OutOfDataSpace => "out_of_data_space",
        })
    }
}

impl fmt::Display for DiscardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiscardMode::Ignore => "ignore_discard",
            DiscardMode::Passdown => "discard_passdown",
            DiscardMode::NoPassdown => "no_discard_passdown",
        })
    }
}

impl fmt::Display for NoSpacePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NoSpacePolicy::Queue => "queue_if_no_space",
            NoSpacePolicy::Error => "error_if_no_space",
        })
    }
}

/// Prints the status in the kernel's own format (so a parse can be checked against the source).
impl fmt::Display for ThinPoolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self {
            ThinPoolStatus::Fail => return f.write_str("Fail"),
            ThinPoolStatus::Error => return f.write_str("Error"),
            ThinPoolStatus::Working(u) => u,
        };
        write!(
            f,
            "{} {}/{} {}/{} ",
            u.transaction_id,
            u.used_metadata_blocks,
            u.total_metadata_blocks,
            u.used_data_blocks,
            u.total_data_blocks
        )?;
        match u.held_metadata_root {
            Some(r) => write!(f, "{r} ")?,
            None => f.write_str("- ")?,
        }
        write!(
            f,
            "{} {} {} {} ",
            u.mode,
            u.discards,
            u.no_space,
            if u.needs_check { "needs_check" } else { "-" }
        )?;
        if let Some(w) = u.metadata_low_watermark {
            write!(f, "{w} ")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn working(line: &str) -> ThinPoolUsage {
        match ThinPoolStatus::parse(line) {
            Ok(ThinPoolStatus::Working(u)) => u,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn reads_every_field_of_a_current_kernel_line() {
        // Debian 6.1, an lvm pool (docs/protocol.md §8.6), trailing space included.
        let u = working("2 112/1024 128/1024 - rw discard_passdown queue_if_no_space - 256 ");
        assert_eq!(u.transaction_id, 2);
        assert_eq!(
            (u.used_metadata_blocks, u.total_metadata_blocks),
            (112, 1024)
        );
        assert_eq!((u.used_data_blocks, u.total_data_blocks), (128, 1024));
        assert_eq!(u.held_metadata_root, None);
        assert_eq!(u.mode, PoolMode::ReadWrite);
        assert_eq!(u.discards, DiscardMode::Passdown);
        assert_eq!(u.no_space, NoSpacePolicy::Queue);
        assert!(!u.needs_check);
        assert_eq!(u.metadata_low_watermark, Some(256));
    }

    #[test]
    fn reads_modes_flags_and_held_root() {
        let u = working(
            "18446744073709551615 1/2 3/4 95 ro ignore_discard error_if_no_space needs_check 7",
        );
        assert_eq!(u.transaction_id, u64::MAX);
        assert_eq!(u.held_metadata_root, Some(95));
        assert_eq!(u.mode, PoolMode::ReadOnly);
        assert_eq!(u.discards, DiscardMode::Ignore);
        assert_eq!(u.no_space, NoSpacePolicy::Error);
        assert!(u.needs_check);
        let u = working("0 1/2 3/4 - out_of_data_space no_discard_passdown queue_if_no_space -");
        assert_eq!(u.mode, PoolMode::OutOfDataSpace);
        assert_eq!(u.discards, DiscardMode::NoPassdown);
        assert_eq!(u.metadata_low_watermark, None);
    }

    #[test]
    fn older_kernels_shorter_lines_take_defaults() {
        let u = working("5 10/20 30/40 -");
        assert_eq!(
            (u.mode, u.discards, u.no_space, u.needs_check),
            (
                PoolMode::ReadWrite,
                DiscardMode::Passdown,
                NoSpacePolicy::Queue,
                false
            )
        );
        let u = working("5 10/20 30/40 - ro ignore_discard error_if_no_space");
        assert_eq!(u.no_space, NoSpacePolicy::Error);
    }

    #[test]
    fn fail_and_error_lines() {
        assert_eq!(ThinPoolStatus::parse("Fail"), Ok(ThinPoolStatus::Fail));
        assert_eq!(ThinPoolStatus::parse("Error"), Ok(ThinPoolStatus::Error));
        assert_eq!(ThinStatus::parse("Fail"), Ok(ThinStatus::Fail));
        assert_eq!(ThinStatus::parse("Error"), Ok(ThinStatus::Error));
        assert!(ThinPoolStatus::parse("Fail").unwrap().usage().is_none());
    }

    #[test]
    fn refuses_malformed_pool_lines_with_the_field_named() {
        let field = |l: &str| ThinPoolStatus::parse(l).unwrap_err().field;
        assert_eq!(field(""), "transaction id");
        assert_eq!(field("-1 1/2 3/4 -"), "transaction id");
        assert_eq!(field("1 1/2"), "data usage");
        assert_eq!(field("1 12 3/4 -"), "metadata usage");
        assert_eq!(field("1 1/2 3/ -"), "data usage");
        assert_eq!(field("1 1/2 3/4"), "held metadata root");
        assert_eq!(field("1 1/2 3/4 - rx"), "mode");
        assert_eq!(field("1 1/2 3/4 - rw discard"), "discard mode");
        assert_eq!(field("1 1/2 3/4 - rw ignore_discard"), "no-space policy");
        assert_eq!(
            field("1 1/2 3/4 - rw ignore_discard queue_if_no_space maybe"),
            "needs_check flag"
        );
        assert_eq!(
            field("1 1/2 3/4 - rw ignore_discard queue_if_no_space - x"),
            "metadata low watermark"
        );
        assert_eq!(
            field("1 1/2 3/4 - rw ignore_discard queue_if_no_space - 1 2"),
            "end of line"
        );
        assert_eq!(field("18446744073709551616 1/2 3/4 -"), "transaction id");
    }

    #[test]
    fn thin_lines() {
        assert_eq!(
            ThinStatus::parse("8192 8191"),
            Ok(ThinStatus::Working {
                mapped: Sectors(8192),
                highest_mapped: Some(Sectors(8191))
            })
        );
        assert_eq!(
            ThinStatus::parse("0 -"),
            Ok(ThinStatus::Working {
                mapped: Sectors(0),
                highest_mapped: None
            })
        );
        assert!(ThinStatus::parse("").is_err());
        assert!(ThinStatus::parse("1").is_err());
        assert!(ThinStatus::parse("1 2 3").is_err());
        assert!(ThinStatus::parse("x -").is_err());
    }

    #[test]
    fn printing_a_parse_gives_the_kernel_line_back() {
        for line in [
            "2 112/1024 128/1024 - rw discard_passdown queue_if_no_space - 256 ",
            "7 1/2 3/4 95 ro ignore_discard error_if_no_space needs_check ",
            "Fail",
        ] {
            assert_eq!(ThinPoolStatus::parse(line).unwrap().to_string(), line);
        }
    }
}
