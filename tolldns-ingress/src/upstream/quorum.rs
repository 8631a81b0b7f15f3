//! Quorum grading (sans-IO): compare the answers of several upstreams and decide which one to
//! use, how much to trust it and how long it may be cached.

use std::collections::BTreeSet;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

/// How far the upstreams agreed on the chosen answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// At least the quorum of upstreams returned identical answers.
    High,
    /// Answers overlap (share at least a third of their records) without being identical, or an
    /// NXDOMAIN was confirmed by the quorum.
    Medium,
    /// One upstream's word only: no agreement, or quorum mode is off.
    Low,
}

/// TTL cap for [`Confidence::High`] answers, in seconds.
pub const HIGH_TTL_CAP: u32 = 300;
/// TTL cap for [`Confidence::Medium`] answers, in seconds.
pub const MEDIUM_TTL_CAP: u32 = 120;
/// TTL cap for [`Confidence::Low`] answers in quorum mode, in seconds.
pub const LOW_TTL_CAP: u32 = 30;
/// TTL cap for NXDOMAIN answers in quorum mode, in seconds.
pub const NXDOMAIN_TTL_CAP: u32 = 30;

/// Minimum overlap (shared records / size of the smaller set) for [`Confidence::Medium`].
const OVERLAP_RATIO: f64 = 0.34;

/// What is compared between answers.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) upstream: usize,
    pub(crate) rtt: Duration,
    rcode: ResponseCode,
    /// Answer section as (lowercase owner, type, rdata), signatures left out: order and TTL do
    /// not matter.
    rrsets: BTreeSet<(String, u16, Vec<u8>)>,
    /// Rdata of the records of the question type only (the final addresses after CNAMEs).
    finals: BTreeSet<Vec<u8>>,
}

impl Candidate {
    pub(crate) fn new(upstream: usize, rtt: Duration, msg: &Message, qtype: RecordType) -> Self {
        let mut rrsets = BTreeSet::new();
        let mut finals = BTreeSet::new();
        for rec in msg.answers() {
            let rtype = rec.record_type();
            if rtype == RecordType::RRSIG {
                continue;
            }
            let mut rdata = Vec::new();
            let mut enc = BinEncoder::new(&mut rdata);
            enc.set_canonical_names(true);
            if rec.data().emit(&mut enc).is_err() {
                continue;
            }
            if rtype == qtype {
                finals.insert(rdata.clone());
            }
            rrsets.insert((
                rec.name().to_lowercase().to_ascii(),
                u16::from(rtype),
                rdata,
            ));
        }
        Self {
            upstream,
            rtt,
            rcode: msg.response_code(),
            rrsets,
            finals,
        }
    }

    fn agrees(&self, other: &Self) -> bool {
        self.rcode == other.rcode && self.rrsets == other.rrsets
    }

    fn overlaps(&self, other: &Self) -> bool {
        if self.rcode != ResponseCode::NoError || other.rcode != ResponseCode::NoError {
            return false;
        }
        let smaller = self.finals.len().min(other.finals.len());
        if smaller == 0 {
            return false;
        }
        let shared = self.finals.intersection(&other.finals).count();
        // Counts are tiny (records in one answer), so the float conversion is exact.
        shared as f64 / smaller as f64 >= OVERLAP_RATIO
    }
}

/// The grading of a set of candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Index into the candidate slice of the answer to use.
    pub(crate) chosen: usize,
    pub(crate) confidence: Confidence,
    pub(crate) ttl_cap: u32,
}

fn fastest(cands: &[Candidate], members: impl Iterator<Item = usize>) -> Option<usize> {
    members.min_by_key(|&i| cands.get(i).map_or(Duration::MAX, |c| c.rtt))
}

/// The largest group of identical answers (ties: the group with the fastest member).
fn largest_group(cands: &[Candidate]) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::new();
    let mut best_rtt = Duration::MAX;
    for c in cands {
        let group: Vec<usize> = cands
            .iter()
            .enumerate()
            .filter(|(_, o)| c.agrees(o))
            .map(|(j, _)| j)
            .collect();
        let rtt = group
            .iter()
            .filter_map(|&j| cands.get(j))
            .map(|o| o.rtt)
            .min();
        let rtt = rtt.unwrap_or(Duration::MAX);
        if group.len() > best.len() || (group.len() == best.len() && rtt < best_rtt) {
            best = group;
            best_rtt = rtt;
        }
    }
    best
}

/// True once some group of identical answers reached the quorum: more answers cannot raise the
/// confidence any further.
pub(crate) fn quorum_reached(cands: &[Candidate], quorum: usize) -> bool {
    largest_group(cands).len() >= quorum
}

/// Grades candidates: identical answers from at least `quorum` upstreams give High (NXDOMAIN:
/// Medium), overlapping answers give Medium, anything else the fastest answer with Low.
/// NXDOMAIN is always capped at [`NXDOMAIN_TTL_CAP`]. `None` if there is no candidate.
pub(crate) fn grade(cands: &[Candidate], quorum: usize) -> Option<Verdict> {
    let group = largest_group(cands);
    let (chosen, confidence, mut ttl_cap) = if group.len() >= quorum.max(1) {
        let chosen = fastest(cands, group.iter().copied())?;
        let nx = cands.get(chosen)?.rcode == ResponseCode::NXDomain;
        if nx {
            (chosen, Confidence::Medium, NXDOMAIN_TTL_CAP)
        } else {
            (chosen, Confidence::High, HIGH_TTL_CAP)
        }
    } else {
        let mut overlapping = BTreeSet::new();
        for (i, a) in cands.iter().enumerate() {
            for (j, b) in cands.iter().enumerate().skip(i + 1) {
                if a.overlaps(b) {
                    overlapping.insert(i);
                    overlapping.insert(j);
                }
            }
        }
        match fastest(cands, overlapping.into_iter()) {
            Some(chosen) => (chosen, Confidence::Medium, MEDIUM_TTL_CAP),
            None => (
                fastest(cands, 0..cands.len())?,
                Confidence::Low,
                LOW_TTL_CAP,
            ),
        }
    };
    if cands.get(chosen)?.rcode == ResponseCode::NXDomain {
        ttl_cap = ttl_cap.min(NXDOMAIN_TTL_CAP);
    }
    Some(Verdict {
        chosen,
        confidence,
        ttl_cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::MessageType;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{Name, RData, Record};
    use std::net::Ipv4Addr;

    fn cand(up: usize, ms: u64, ips: &[u8], ttl: u32) -> Candidate {
        let mut m = Message::new();
        m.set_message_type(MessageType::Response);
        // Reverse order and varying TTLs must not matter.
        for &ip in ips.iter().rev() {
            let name = Name::from_ascii("Q.test.").unwrap();
            m.add_answer(Record::from_rdata(
                name,
                ttl,
                RData::A(A(Ipv4Addr::new(192, 0, 2, ip))),
            ));
        }
        Candidate::new(up, Duration::from_millis(ms), &m, RecordType::A)
    }

    fn nx(up: usize, ms: u64) -> Candidate {
        let mut m = Message::new();
        m.set_message_type(MessageType::Response)
            .set_response_code(ResponseCode::NXDomain);
        Candidate::new(up, Duration::from_millis(ms), &m, RecordType::A)
    }

    #[test]
    fn high_when_quorum_agrees() {
        let c = [
            cand(0, 30, &[1, 2], 60),
            cand(1, 10, &[9], 60),
            cand(2, 20, &[2, 1], 300),
        ];
        let v = grade(&c, 2).unwrap();
        assert_eq!(
            v,
            Verdict {
                chosen: 2,
                confidence: Confidence::High,
                ttl_cap: 300
            }
        );
        assert!(quorum_reached(&c, 2));
        assert!(!quorum_reached(&c, 3));
    }

    #[test]
    fn medium_when_overlapping() {
        let c = [
            cand(0, 30, &[1, 2], 60),
            cand(1, 10, &[9], 60),
            cand(2, 20, &[2, 3], 60),
        ];
        let v = grade(&c, 2).unwrap();
        assert_eq!(
            v,
            Verdict {
                chosen: 2,
                confidence: Confidence::Medium,
                ttl_cap: 120
            }
        );
    }

    #[test]
    fn low_otherwise_and_nxdomain_capped() {
        let c = [
            cand(0, 30, &[1], 60),
            cand(1, 10, &[2], 60),
            cand(2, 20, &[3], 60),
        ];
        let v = grade(&c, 2).unwrap();
        assert_eq!(
            v,
            Verdict {
                chosen: 1,
                confidence: Confidence::Low,
                ttl_cap: 30
            }
        );
        let c = [nx(0, 5), nx(1, 3)];
        let v = grade(&c, 2).unwrap();
        assert_eq!(
            v,
            Verdict {
                chosen: 1,
                confidence: Confidence::Medium,
                ttl_cap: 30
            }
        );
        let c = [nx(0, 5), cand(1, 3, &[1], 60)];
        assert_eq!(grade(&c, 2).unwrap().confidence, Confidence::Low);
        assert!(grade(&[], 2).is_none());
    }
}
