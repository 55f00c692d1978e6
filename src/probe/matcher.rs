//! Matches responses to the requests of a round (RFC 3261 §17.1.3, §18.1.2): top Via branch,
//! Call-ID, CSeq number and method, and the source address the request went to. Provisional
//! responses are ignored; unmatched, late, duplicate, spoofed and malformed ones are counted and
//! dropped. Pure: no I/O, no clock — every call takes the instant it is about.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::probe::DroppedResponses;
use crate::probe::message::RequestKey;
use crate::probe::parse::{ParseError, Response};

/// Why a response was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Matched no request of ours.
    Unmatched,
    /// Answered a request that had already timed out.
    Late,
    /// A second final response to an answered request.
    Duplicate,
    /// Our ids, but not from the address the request went to.
    Spoofed,
    /// Not parseable as a SIP response.
    Malformed,
}

impl DropReason {
    /// The `sip.probe.drop_reason` value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Unmatched => "unmatched",
            DropReason::Late => "late",
            DropReason::Duplicate => "duplicate",
            DropReason::Spoofed => "spoofed",
            DropReason::Malformed => "malformed",
        }
    }
}

/// What one incoming message meant.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The final response to request `index`.
    Answered {
        /// Request index in the round.
        index: usize,
        /// Status code.
        status: u16,
        /// Arrival minus send time.
        rtt: Duration,
    },
    /// A 1xx to one of our requests: ignored (it neither answers nor stops the timeout).
    Provisional,
    /// Dropped and counted.
    Dropped(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Answered,
    Expired,
}

#[derive(Debug, Clone)]
struct Entry {
    key: RequestKey,
    peer: SocketAddr,
    /// `None` for a request of an earlier round, kept to recognise late and duplicate answers.
    index: Option<usize>,
    /// Send time and deadline (an earlier round's request is never pending, so has neither).
    times: Option<(Instant, Instant)>,
    state: State,
}

/// A request of an earlier round, remembered so its answers are classed late or duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastRequest {
    /// Its ids.
    pub key: RequestKey,
    /// Where it went.
    pub peer: SocketAddr,
    /// It had been answered (a further answer is a duplicate) or not (an answer is late).
    pub answered: bool,
}

/// The requests of one round and what became of them.
#[derive(Debug, Default)]
pub struct Matcher {
    by_branch: HashMap<String, Entry>,
    pending: usize,
    expired_early: Vec<usize>,
    dropped: DroppedResponses,
}

impl Matcher {
    /// A matcher that also knows the requests of the previous round.
    pub fn new(past: impl IntoIterator<Item = PastRequest>) -> Matcher {
        let mut m = Matcher::default();
        for p in past {
            let state = if p.answered {
                State::Answered
            } else {
                State::Expired
            };
            m.by_branch.insert(
                p.key.branch.clone(),
                Entry {
                    key: p.key,
                    peer: p.peer,
                    index: None,
                    times: None,
                    state,
                },
            );
        }
        m
    }

    /// Records request `index`, sent to `peer` at `sent_at`, due by `sent_at + timeout`.
    pub fn sent(
        &mut self,
        index: usize,
        key: RequestKey,
        peer: SocketAddr,
        sent_at: Instant,
        timeout: Duration,
    ) {
        self.pending += 1;
        self.by_branch.insert(
            key.branch.clone(),
            Entry {
                key,
                peer,
                index: Some(index),
                times: Some((sent_at, sent_at + timeout)),
                state: State::Pending,
            },
        );
    }

    /// Classifies one incoming message that arrived from `from` at `at`.
    pub fn on_message(
        &mut self,
        parsed: Result<&Response, &ParseError>,
        from: SocketAddr,
        at: Instant,
    ) -> Verdict {
        let verdict = self.classify(parsed, from, at);
        if let Verdict::Dropped(reason) = verdict {
            let d = &mut self.dropped;
            match reason {
                DropReason::Unmatched => d.unmatched += 1,
                DropReason::Late => d.late += 1,
                DropReason::Duplicate => d.duplicate += 1,
                DropReason::Spoofed => d.spoofed += 1,
                DropReason::Malformed => d.malformed += 1,
            }
        }
        verdict
    }

    fn classify(
        &mut self,
        parsed: Result<&Response, &ParseError>,
        from: SocketAddr,
        at: Instant,
    ) -> Verdict {
        let Ok(resp) = parsed else {
            return Verdict::Dropped(DropReason::Malformed);
        };
        let Some(branch) = resp.top_via.branch.as_deref() else {
            return Verdict::Dropped(DropReason::Unmatched);
        };
        let Some(entry) = self.by_branch.get_mut(branch) else {
            return Verdict::Dropped(DropReason::Unmatched);
        };
        if resp.call_id != entry.key.call_id
            || resp.cseq != entry.key.cseq
            || resp.cseq_method != entry.key.method
        {
            return Verdict::Dropped(DropReason::Unmatched);
        }
        if from != entry.peer {
            return Verdict::Dropped(DropReason::Spoofed);
        }
        if resp.status < 200 {
            return Verdict::Provisional;
        }
        let (index, sent_at, deadline) = match (entry.state, entry.index, entry.times) {
            (State::Answered, _, _) => return Verdict::Dropped(DropReason::Duplicate),
            (State::Pending, Some(index), Some((sent_at, deadline))) => (index, sent_at, deadline),
            _ => return Verdict::Dropped(DropReason::Late),
        };
        self.pending -= 1;
        if at > deadline {
            entry.state = State::Expired;
            self.expired_early.push(index);
            return Verdict::Dropped(DropReason::Late);
        }
        entry.state = State::Answered;
        Verdict::Answered {
            index,
            status: resp.status,
            rtt: at.saturating_duration_since(sent_at),
        }
    }

    /// Requests whose timeout passed by `now` (or that a late answer showed expired): they are
    /// timeouts. Each index is returned once.
    pub fn expire(&mut self, now: Instant) -> Vec<usize> {
        let mut out = std::mem::take(&mut self.expired_early);
        for entry in self.by_branch.values_mut() {
            if let (State::Pending, Some(index), Some((_, deadline))) =
                (entry.state, entry.index, entry.times)
                && now >= deadline
            {
                entry.state = State::Expired;
                self.pending -= 1;
                out.push(index);
            }
        }
        out.sort_unstable();
        out
    }

    /// The earliest timeout still ahead.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_branch
            .values()
            .filter(|e| e.state == State::Pending)
            .filter_map(|e| e.times.map(|(_, deadline)| deadline))
            .min()
    }

    /// Requests still waiting for an answer.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Responses dropped so far.
    pub fn dropped(&self) -> DroppedResponses {
        self.dropped
    }

    /// This round's requests, to seed the next round's matcher.
    pub fn into_past(self) -> Vec<PastRequest> {
        self.by_branch
            .into_values()
            .filter(|e| e.index.is_some())
            .map(|e| PastRequest {
                answered: e.state == State::Answered,
                key: e.key,
                peer: e.peer,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::parse::ViaInfo;

    fn key(n: u32) -> RequestKey {
        RequestKey {
            branch: format!("z9hG4bK-cp-1-{n}"),
            call_id: "cid".into(),
            cseq: n,
            method: "OPTIONS",
        }
    }

    fn resp(k: &RequestKey, status: u16) -> Response {
        Response {
            status,
            reason: String::new(),
            top_via: ViaInfo {
                branch: Some(k.branch.clone()),
                ..ViaInfo::default()
            },
            via_count: 1,
            call_id: k.call_id.clone(),
            cseq: k.cseq,
            cseq_method: "OPTIONS".into(),
            challenges: Vec::new(),
            min_expires: None,
            contacts: Vec::new(),
        }
    }

    const PEER: &str = "192.0.2.1:5060";
    const T: Duration = Duration::from_secs(2);

    fn setup() -> (Matcher, Instant, SocketAddr) {
        let t0 = Instant::now();
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut m = Matcher::new([]);
        m.sent(0, key(1), peer, t0, T);
        m.sent(1, key(2), peer, t0 + Duration::from_millis(200), T);
        (m, t0, peer)
    }

    #[test]
    fn matches_by_branch_call_id_cseq_and_source() {
        let (mut m, t0, peer) = setup();
        let v = m.on_message(
            Ok(&resp(&key(2), 200)),
            peer,
            t0 + Duration::from_millis(230),
        );
        assert_eq!(
            v,
            Verdict::Answered {
                index: 1,
                status: 200,
                rtt: Duration::from_millis(30)
            }
        );
        assert_eq!(m.pending(), 1);
        assert_eq!(m.dropped(), DroppedResponses::default());
    }

    #[test]
    fn unmatched_when_any_id_differs() {
        let (mut m, t0, peer) = setup();
        let mut other_call = resp(&key(1), 200);
        other_call.call_id = "x".into();
        let mut other_cseq = resp(&key(1), 200);
        other_cseq.cseq = 9;
        let mut other_method = resp(&key(1), 200);
        other_method.cseq_method = "INVITE".into();
        let mut no_branch = resp(&key(1), 200);
        no_branch.top_via.branch = None;
        for r in [
            resp(&key(7), 200),
            other_call,
            other_cseq,
            other_method,
            no_branch,
        ] {
            assert_eq!(
                m.on_message(Ok(&r), peer, t0),
                Verdict::Dropped(DropReason::Unmatched)
            );
        }
        assert_eq!(m.dropped().unmatched, 5);
        assert_eq!(m.pending(), 2);
    }

    #[test]
    fn provisional_is_ignored_and_does_not_stop_the_timeout() {
        let (mut m, t0, peer) = setup();
        assert_eq!(
            m.on_message(Ok(&resp(&key(1), 100)), peer, t0),
            Verdict::Provisional
        );
        assert_eq!(m.dropped(), DroppedResponses::default());
        assert_eq!(m.pending(), 2);
        assert_eq!(m.expire(t0 + T), vec![0]);
    }

    #[test]
    fn duplicate_after_answer() {
        let (mut m, t0, peer) = setup();
        let r = resp(&key(1), 200);
        assert!(matches!(
            m.on_message(Ok(&r), peer, t0),
            Verdict::Answered { index: 0, .. }
        ));
        assert_eq!(
            m.on_message(Ok(&r), peer, t0),
            Verdict::Dropped(DropReason::Duplicate)
        );
        assert_eq!(m.dropped().duplicate, 1);
    }

    #[test]
    fn late_after_expiry_or_after_deadline_before_expiry_ran() {
        let (mut m, t0, peer) = setup();
        assert_eq!(m.next_deadline(), Some(t0 + T));
        assert_eq!(
            m.expire(t0 + T - Duration::from_millis(1)),
            Vec::<usize>::new()
        );
        assert_eq!(m.expire(t0 + T), vec![0]);
        assert_eq!(
            m.on_message(Ok(&resp(&key(1), 200)), peer, t0 + T),
            Verdict::Dropped(DropReason::Late)
        );
        // Request 1's answer arrived after its deadline but before expire() looked at it.
        let at = t0 + Duration::from_millis(200) + T + Duration::from_millis(1);
        assert_eq!(
            m.on_message(Ok(&resp(&key(2), 200)), peer, at),
            Verdict::Dropped(DropReason::Late)
        );
        assert_eq!(m.expire(at), vec![1], "reported as a timeout exactly once");
        assert_eq!(m.expire(at), Vec::<usize>::new());
        assert_eq!(m.dropped().late, 2);
        assert_eq!(m.pending(), 0);
        assert_eq!(m.next_deadline(), None);
    }

    #[test]
    fn answer_on_the_deadline_still_counts() {
        let (mut m, t0, peer) = setup();
        assert!(matches!(
            m.on_message(Ok(&resp(&key(1), 503)), peer, t0 + T),
            Verdict::Answered { status: 503, .. }
        ));
    }

    #[test]
    fn spoofed_source_is_dropped_and_the_real_answer_still_matches() {
        let (mut m, t0, peer) = setup();
        let liar: SocketAddr = "192.0.2.66:5060".parse().unwrap();
        let r = resp(&key(1), 200);
        assert_eq!(
            m.on_message(Ok(&r), liar, t0),
            Verdict::Dropped(DropReason::Spoofed)
        );
        let same_ip_other_port: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        assert_eq!(
            m.on_message(Ok(&r), same_ip_other_port, t0),
            Verdict::Dropped(DropReason::Spoofed)
        );
        assert!(matches!(
            m.on_message(Ok(&r), peer, t0),
            Verdict::Answered { .. }
        ));
        assert_eq!(m.dropped().spoofed, 2);
    }

    #[test]
    fn malformed_is_counted() {
        let (mut m, t0, peer) = setup();
        assert_eq!(
            m.on_message(Err(&ParseError::Empty), peer, t0),
            Verdict::Dropped(DropReason::Malformed)
        );
        assert_eq!(m.dropped().malformed, 1);
    }

    #[test]
    fn past_round_answers_are_late_or_duplicate() {
        let (mut m, t0, peer) = setup();
        assert!(matches!(
            m.on_message(Ok(&resp(&key(1), 200)), peer, t0),
            Verdict::Answered { .. }
        ));
        m.expire(t0 + Duration::from_secs(10));
        let past = m.into_past();
        assert_eq!(past.len(), 2);
        let mut next = Matcher::new(past);
        assert_eq!(next.pending(), 0);
        let now = t0 + Duration::from_secs(60);
        assert_eq!(
            next.on_message(Ok(&resp(&key(1), 200)), peer, now),
            Verdict::Dropped(DropReason::Duplicate)
        );
        assert_eq!(
            next.on_message(Ok(&resp(&key(2), 200)), peer, now),
            Verdict::Dropped(DropReason::Late)
        );
        assert!(next.expire(now).is_empty());
        assert!(
            next.into_past().is_empty(),
            "only one round of history is kept"
        );
    }
}
