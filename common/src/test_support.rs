//! Test support shared by the workspace's tests (feature `test-support`, enabled as a
//! dev-dependency feature by the crates whose tests use it; also on in `common`'s own unit
//! tests). Never part of an installed daemon.
//!
//! - [`Rng`]: the small deterministic generators the property tests drive their inputs with;
//! - [`request`], [`request_tree`], [`garbage_request`]: in-memory requests as a daemon's
//!   handler gets them from libdaemon (no peer credentials).
#![forbid(unsafe_code)]

use crate::config::{parse, DupMode, Tree};
use crate::daemon::Request;

/// A small deterministic pseudo-random generator (no dependency). Two variants, kept so each
/// test sees the very inputs it saw before: [`Rng::xorshift64`] and [`Rng::xorshift64_star`].
pub struct Rng {
    state: u64,
    star: bool,
}

impl Rng {
    /// Marsaglia's xorshift64 (shifts 13, 7, 17). `seed` must not be 0.
    pub fn xorshift64(seed: u64) -> Rng {
        Rng {
            state: seed,
            star: false,
        }
    }

    /// xorshift64* (shifts 12, 25, 27, then a multiply). `seed` must not be 0.
    pub fn xorshift64_star(seed: u64) -> Rng {
        Rng {
            state: seed,
            star: true,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        if self.star {
            *s ^= *s >> 12;
            *s ^= *s << 25;
            *s ^= *s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        } else {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *s
        }
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// One of `items` (which must not be empty).
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// True with a chance of `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }
}

/// A request parsed from `text` (as libdaemon parses it: duplicate keys kept); its tree is
/// `None` when the text does not parse, as the handler then gets it.
pub fn request(text: &[u8]) -> Request {
    Request {
        tree: parse(text, DupMode::KeepAll).ok(),
        peer: None,
    }
}

/// A request holding `tree`.
pub fn request_tree(tree: Tree) -> Request {
    Request {
        tree: Some(tree),
        peer: None,
    }
}

/// A request that did not parse.
pub fn garbage_request() -> Request {
    Request {
        tree: None,
        peer: None,
    }
}

/// A command line: `prog` then `args`, as `std::env::args()` gives it.
pub fn argv(prog: &str, args: &[&str]) -> Vec<String> {
    std::iter::once(prog)
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_give_their_known_sequences() {
        // First outputs of each variant from seed 1, as the copies this replaced computed them.
        let mut r = Rng::xorshift64(1);
        assert_eq!(r.next_u64(), 1_082_269_761);
        let mut r = Rng::xorshift64_star(1);
        assert_eq!(r.next_u64(), 5_180_492_295_206_395_165);
    }

    #[test]
    fn requests_are_built_as_libdaemon_builds_them() {
        let r = request(b"request = \"hello\"\n");
        assert!(r.tree.is_some() && r.peer.is_none());
        assert!(request(b"= {{{").tree.is_none());
        assert!(garbage_request().tree.is_none());
        assert!(request_tree(Tree { nodes: vec![] }).tree.is_some());
    }
}
