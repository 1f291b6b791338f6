//! A VG's metadata sent once per feeding connection instead of with every PV of the VG.
//!
//! lvm2's `pvscan --cache` sends the VG's whole metadata with each of its PVs, and lvmetad
//! parses and compares every copy: for a VG of N PVs that is N copies, so a scan costs
//! O(PVs × VG size). lvmetad itself needs the text once: a `pv_found` without `metadata` finds
//! the PV's VG through the PVID -> VG id mapping that the VG's metadata set (lvmetad-core.c,
//! `pv_found`, 2.02.187; ours alike), and a copy equal to the cached one, at the same seqno,
//! changes nothing. So a feeding connection leaves the metadata out of a PV's `pv_found` when
//! all of this holds, and otherwise sends it as lvm2 does:
//!
//! - an earlier PV on this connection carried the very same text (byte for byte: the scan
//!   shares one parsed VG per distinct text), and lvmetad's answer to it reported the VG at
//!   that text's seqno (`seqno_after`): lvmetad kept it, or kept another copy of that seqno,
//!   and the copies that follow change nothing either way;
//! - no PV with another text of the same VG id or name went out on this connection (a VG whose
//!   PVs disagree, a renamed VG, two VGs of one name): such a VG always gets its metadata, so
//!   lvmetad sees exactly what lvm2 would send;
//! - the text lists the PV (so the mapping exists).
//!
//! A PV whose text was sent by an earlier PV still unanswered first waits for that answer
//! ([`VgOnce::must_wait`]; the other PVs in flight keep lvmetad busy meanwhile). Every PV of a
//! group goes on one connection in scan order (see [`super::stream`]), which is what makes the
//! per-connection view complete. The answer to a PV sent without metadata carries no
//! `seqno_before`, so it gets no seqno warning (its text's first PV got any there was).

use super::metadata::VolumeGroup;
use super::pv::ScannedPv;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sent by a PV whose answer is not read yet.
    Awaiting,
    /// lvmetad answered with the text's seqno: the next PVs of the text go without it.
    Confirmed,
    /// Always send it (lvmetad answered another seqno, or the VG has several texts).
    Always,
}

#[derive(Debug)]
struct Sent {
    text: Arc<VolumeGroup>,
    state: State,
    /// The PVIDs (undashed) the text lists, once it is confirmed.
    listed: HashSet<String>,
}

fn bare(id: &str) -> String {
    id.chars().filter(|&c| c != '-').collect()
}

/// What one connection sent of each VG (by VG id), and the VG ids seen under each name.
#[derive(Debug, Default)]
pub struct VgOnce {
    by_id: HashMap<String, Sent>,
    id_of_name: HashMap<String, String>,
}

impl VgOnce {
    /// Note that `pv` goes out now; whether its `pv_found` must carry the VG metadata.
    pub fn post(&mut self, pv: &ScannedPv) -> bool {
        let Some(vg) = &pv.vg else {
            return false;
        };
        let clash = match self.id_of_name.get(&vg.name) {
            Some(id) if *id != vg.id => Some(id.clone()),
            Some(_) => None,
            None => {
                self.id_of_name.insert(vg.name.clone(), vg.id.clone());
                None
            }
        };
        if let Some(other) = &clash {
            if let Some(s) = self.by_id.get_mut(other) {
                s.state = State::Always;
            }
        }
        match self.by_id.get_mut(&vg.id) {
            None => {
                let state = if clash.is_some() {
                    State::Always
                } else {
                    State::Awaiting
                };
                let text = vg.clone();
                let listed = HashSet::new();
                self.by_id.insert(
                    vg.id.clone(),
                    Sent {
                        text,
                        state,
                        listed,
                    },
                );
                true
            }
            Some(s) if !Arc::ptr_eq(&s.text, vg) || clash.is_some() => {
                s.text = vg.clone();
                s.state = State::Always;
                true
            }
            // The label's PVID is undashed, as `listed` holds them.
            Some(s) => s.state != State::Confirmed || !s.listed.contains(&pv.label.pv.pvid),
        }
    }

    /// lvmetad answered the `pv_found` of `pv`, which carried its VG metadata, with
    /// `seqno_after`.
    pub fn answered(&mut self, pv: &ScannedPv, seqno_after: Option<i64>) {
        let Some(vg) = &pv.vg else {
            return;
        };
        if let Some(s) = self.by_id.get_mut(&vg.id) {
            if s.state == State::Awaiting && Arc::ptr_eq(&s.text, vg) {
                if seqno_after == Some(vg.seqno as i64) {
                    s.state = State::Confirmed;
                    s.listed = vg.pvs.iter().map(|p| bare(&p.id)).collect();
                } else {
                    s.state = State::Always;
                }
            }
        }
    }

    /// Whether `pv` should wait for the answer to the PV that sent its text.
    pub fn must_wait(&self, pv: &ScannedPv) -> bool {
        pv.vg.as_ref().is_some_and(|vg| {
            self.by_id
                .get(&vg.id)
                .is_some_and(|s| s.state == State::Awaiting && Arc::ptr_eq(&s.text, vg))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::feed::tests::{pv, vg_text};
    use crate::scan::metadata::parse_vg_text;

    const P: [&str; 3] = [
        "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP1",
        "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP2",
        "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP3",
    ];

    /// The PVs `ids` of one VG, sharing one parsed text as a scan shares it.
    fn shared(text: &str, ids: &[&str]) -> Vec<ScannedPv> {
        let vg = Arc::new(parse_vg_text(text.as_bytes()).unwrap());
        ids.iter()
            .map(|id| {
                let mut p = pv(id, None);
                p.vg = Some(vg.clone());
                p
            })
            .collect()
    }

    #[test]
    fn a_confirmed_text_goes_once_and_others_wait_for_its_answer() {
        let pvs = shared(&vg_text("vg0", "VG0", &P), &P);
        let mut once = VgOnce::default();
        assert!(once.post(&pvs[0]));
        assert!(once.must_wait(&pvs[1]));
        once.answered(&pvs[0], Some(1));
        assert!(!once.must_wait(&pvs[1]));
        assert!(!once.post(&pvs[1]));
        assert!(!once.post(&pvs[2]));
        // A PV without metadata of its own carries none either way.
        assert!(!once.post(&pv(P[0], None)));
    }

    #[test]
    fn another_seqno_in_the_answer_or_a_second_text_means_always() {
        let pvs = shared(&vg_text("vg0", "VG0", &P), &P);
        let mut once = VgOnce::default();
        assert!(once.post(&pvs[0]));
        once.answered(&pvs[0], Some(2));
        assert!(once.post(&pvs[1]) && once.post(&pvs[2]));

        // Same VG id, another text (an older copy on one PV): every PV sends its own.
        let newer = shared(&vg_text("vg0", "VG0", &P), &P);
        let mut once = VgOnce::default();
        assert!(once.post(&pvs[0]));
        once.answered(&pvs[0], Some(1));
        assert!(once.post(&newer[1]));
        assert!(once.post(&pvs[2]) && once.post(&newer[2]));

        // Two VGs of one name: neither is left out.
        let other = shared(&vg_text("vg0", "VGX", &P[2..]), &P[2..]);
        let mut once = VgOnce::default();
        assert!(once.post(&pvs[0]));
        once.answered(&pvs[0], Some(1));
        assert!(once.post(&other[0]));
        assert!(once.post(&pvs[1]));
    }

    #[test]
    fn a_pv_the_text_does_not_list_gets_the_metadata() {
        let pvs = shared(&vg_text("vg0", "VG0", &P[..2]), &P);
        let mut once = VgOnce::default();
        assert!(once.post(&pvs[0]));
        once.answered(&pvs[0], Some(1));
        assert!(!once.post(&pvs[1]));
        assert!(once.post(&pvs[2]));
    }
}
