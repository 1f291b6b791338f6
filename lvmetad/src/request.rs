//! lvmetad's requests (docs/protocol.md §3), decoded once from the `request` name into [`Op`].
//!
//! The dispatch in `lib.rs` matches on [`Op`] without a catch-all arm, so a request added here
//! and not handled there does not compile; which requests change the cache (and so take the
//! cache write lock) is the variant's kind ([`Change`] or [`Read`]), not a second list of names. Unknown names
//! decode to [`Op::Unknown`] and get C's `failed` / "request not implemented" after the token
//! check, as in C. Pure, no I/O.
#![forbid(unsafe_code)]

/// One lvmetad request (`hello` is answered by the server before it reaches the handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Runs entirely under the token lock.
    TokenUpdate,
    /// Runs entirely under the token lock.
    GetGlobalInfo,
    /// Global flags only (atomics), no cache lock.
    SetGlobalInfo,
    /// Changes the cache: the cache write lock.
    Change(Change),
    /// Reads the cache: the cache read lock.
    Read(Read),
    /// A name lvmetad does not know.
    Unknown,
}

/// The requests that change the cache (C's list of requests that take its cache lock for
/// writing, `lvmetad-core.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    PvFound,
    PvGone,
    PvClearAll,
    VgUpdate,
    VgRemove,
    SetVgInfo,
    VgClearOutdatedPvs,
}

/// The requests that only read the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    VgLookup,
    PvLookup,
    PvList,
    VgList,
    Dump,
}

impl Op {
    /// Every known request, for tests and documentation.
    pub const ALL: [Op; 15] = [
        Op::TokenUpdate,
        Op::GetGlobalInfo,
        Op::SetGlobalInfo,
        Op::Change(Change::PvFound),
        Op::Change(Change::PvGone),
        Op::Change(Change::PvClearAll),
        Op::Change(Change::VgUpdate),
        Op::Change(Change::VgRemove),
        Op::Change(Change::SetVgInfo),
        Op::Change(Change::VgClearOutdatedPvs),
        Op::Read(Read::VgLookup),
        Op::Read(Read::PvLookup),
        Op::Read(Read::PvList),
        Op::Read(Read::VgList),
        Op::Read(Read::Dump),
    ];

    /// The request name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Op::TokenUpdate => "token_update",
            Op::GetGlobalInfo => "get_global_info",
            Op::SetGlobalInfo => "set_global_info",
            Op::Change(c) => match c {
                Change::PvFound => "pv_found",
                Change::PvGone => "pv_gone",
                Change::PvClearAll => "pv_clear_all",
                Change::VgUpdate => "vg_update",
                Change::VgRemove => "vg_remove",
                Change::SetVgInfo => "set_vg_info",
                Change::VgClearOutdatedPvs => "vg_clear_outdated_pvs",
            },
            Op::Read(r) => match r {
                Read::VgLookup => "vg_lookup",
                Read::PvLookup => "pv_lookup",
                Read::PvList => "pv_list",
                Read::VgList => "vg_list",
                Read::Dump => "dump",
            },
            Op::Unknown => "",
        }
    }

    /// Decode a request name.
    pub fn from_name(name: &str) -> Op {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == name)
            .unwrap_or(Op::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_decodes_to_its_op_and_nothing_else_does() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), op);
        }
        for name in ["", "hello", "PV_FOUND", "pv_found ", "set_vg_info2", "NONE"] {
            assert_eq!(Op::from_name(name), Op::Unknown, "{name:?}");
        }
    }

    #[test]
    fn the_cache_writers_are_cs_seven() {
        let writers: Vec<&str> = Op::ALL
            .into_iter()
            .filter(|op| matches!(op, Op::Change(_)))
            .map(Op::name)
            .collect();
        assert_eq!(
            writers,
            [
                "pv_found",
                "pv_gone",
                "pv_clear_all",
                "vg_update",
                "vg_remove",
                "set_vg_info",
                "vg_clear_outdated_pvs"
            ]
        );
    }
}
