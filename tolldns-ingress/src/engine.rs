//! The query pipeline: a synchronous, sans-IO decision per query ([`Engine::handle`]), the
//! upstream leg for misses ([`Engine::resolve`]) and the bookkeeping after a response is sent
//! ([`Engine::complete`]).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::{DNSClass, RecordType};
use portable_atomic::AtomicU64;
use tolldns_cache::{Cache, CacheKey, Lookup};
use tolldns_receipts::{RcodeClass, Transport};

use crate::admission::{AdmissionConfig, Limits, PrefixLimiter, Verdict};
use crate::attack::{AttackConfig, AttackFsm, Mode, ModeKnobs, Signals, Transition};
use crate::clock::{Clock, SystemClock};
use crate::cookies::{self, CookieCheck, CookieSecret};
use crate::metrics::{Decision, Metrics, Prefetch};
use crate::receipts::{Answered, Recorder};
use crate::rrl::{ResponseAction, ResponseCategory, ResponseLimiter, UdpResponse};
use crate::tickets::{Credential, TicketGate, TicketOutcome, TicketPolicy};
use crate::upstream::{Confidence, Question, UpstreamAnswer, UpstreamPool};
use crate::wire::{self, ParseError, Query, Rcode, ResponseWriter};

/// TTL of RFC 8482 answers to ANY.
pub const ANY_TTL: u32 = 3600;
/// UDP payload size the edge advertises in its own EDNS records.
pub const EDNS_UDP_SIZE: u16 = 1232;
/// Size of the response buffers the engine writes into (the largest DNS message).
pub const MAX_MESSAGE: usize = 65_535;
/// Size of an OPT record without options.
const OPT_LEN: usize = 11;
/// Size of the COOKIE option the edge appends (code, length, client and server cookie).
const COOKIE_OPTION_LEN: usize = 4 + cookies::CLIENT_COOKIE_LEN + cookies::SERVER_COOKIE_LEN;

/// Whether an upstream answer may be cached: always outside quorum mode; in quorum mode only
/// when the quorum returned identical answers (High, or an NXDOMAIN the quorum confirmed,
/// which the grading reports as Medium). Overlapping or single answers are served, not cached.
fn cacheable(answer: &UpstreamAnswer) -> bool {
    if answer.ttl_cap.is_none() {
        return true;
    }
    let nxdomain = answer.message.get(3).is_some_and(|b| b & 0x0F == 3);
    match answer.confidence {
        Confidence::High => true,
        Confidence::Medium => nxdomain,
        _ => false,
    }
}

/// The question to ask upstream for the parsed query `q` of `query`: the name as the client
/// spelled it (letter case kept), type, class, and the DO and CD bits. `None` when the name
/// does not decode.
fn upstream_question(query: &[u8], q: &Query) -> Option<Question> {
    let name_end = q.question_end.checked_sub(4)?;
    let name = query.get(wire::HEADER_LEN..name_end)?;
    let mut question = Question::from_wire(name, RecordType::from(q.qtype)).ok()?;
    question.qclass = DNSClass::from(q.qclass);
    question.dnssec_ok = q.dnssec_ok();
    question.checking_disabled = q.checking_disabled();
    Some(question)
}

/// One query as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Transport it came over.
    pub transport: Transport,
    /// Source address (for admission; never recorded).
    pub source: IpAddr,
    /// The query bytes.
    pub query: &'a [u8],
    /// Ticket credential from the transport (DoH headers). Over UDP, TCP and DoT the
    /// credential travels in the query's EDNS options and this is [`Credential::None`].
    pub credential: Credential<'a>,
    /// When it was received.
    pub received: Instant,
}

/// A response written into the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// Bytes written.
    pub len: usize,
    /// Smallest TTL in the response (DoH `Cache-Control: max-age`).
    pub min_ttl: Option<u32>,
    /// Outcome class for receipts and metrics.
    pub rcode: RcodeClass,
    /// Served from the cache.
    pub cache_hit: bool,
    /// Served stale.
    pub stale: bool,
    /// TC=1.
    pub truncated: bool,
    /// The parsed query, when the question was readable.
    pub query: Option<Query>,
    /// A cache hit on a popular entry close to expiry: refresh it in the background
    /// ([`Engine::prefetch_slot`], [`Engine::prefetch`]) after answering.
    pub prefetch: bool,
    /// The ticket id this query was charged to (what its leaf carries).
    pub ticket: Option<[u8; 16]>,
    /// A session ticket for the client (over UDP, TCP and DoT it is already in the response's
    /// EDNS options; DoH sends it as a header).
    pub session: Option<[u8; 16]>,
    /// The query was refused for its ticket (DoH answers `401` with a challenge).
    pub refusal: Option<tolldns_tickets::Refusal>,
}

impl Reply {
    fn plain(len: usize, rcode: RcodeClass, query: Option<Query>) -> Self {
        Self {
            len,
            min_ttl: None,
            rcode,
            cache_hit: false,
            stale: false,
            truncated: false,
            query,
            prefetch: false,
            ticket: None,
            session: None,
            refusal: None,
        }
    }
}

/// A query that must go to an upstream. Holds one slot of the global in-flight limit until
/// dropped.
#[derive(Debug)]
pub struct Forward {
    /// The parsed query.
    pub query: Query,
    key: CacheKey,
    limit: usize,
    /// TTL clamp of the query's treatment (the mode's, or the offender knobs').
    clamp: Option<u32>,
    ticket: TicketOutcome,
    _slot: InFlightSlot,
}

#[derive(Debug)]
struct InFlightSlot(Arc<AtomicUsize>);

impl Drop for InFlightSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What to do with a query.
// `Reply` stays inline: boxing it would allocate on every cache hit.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Step {
    /// Send `out[..reply.len]`.
    Respond(Reply),
    /// Send nothing (counted).
    Drop,
    /// Resolve upstream with [`Engine::resolve`] (boxed: misses may allocate, hits never do).
    Forward(Box<Forward>),
}

#[derive(Debug, Default)]
struct TickCounters {
    queries: AtomicU64,
    limited: AtomicU64,
    offenders: AtomicU64,
    upstream: AtomicU64,
    upstream_failures: AtomicU64,
    in_flight_peak: AtomicU64,
}

/// Settings the engine needs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Admission.
    pub admission: AdmissionConfig,
    /// Attack mode.
    pub attack: AttackConfig,
    /// Background refreshes of cache entries running at once at most (0: no prefetch).
    pub max_prefetches: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            admission: AdmissionConfig::default(),
            attack: AttackConfig::default(),
            max_prefetches: 16,
        }
    }
}

/// One running background refresh; releases its place in the bound when dropped.
#[derive(Debug)]
pub struct PrefetchSlot(Arc<AtomicUsize>);

impl Drop for PrefetchSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sans-IO query pipeline shared by every listener.
#[derive(Debug)]
pub struct Engine {
    cache: Arc<Cache>,
    limiter: PrefixLimiter,
    rrl: ResponseLimiter,
    fsm: Mutex<AttackFsm>,
    mode: AtomicU8,
    admission: AdmissionConfig,
    attack: AttackConfig,
    counters: TickCounters,
    in_flight: Arc<AtomicUsize>,
    metrics: Metrics,
    recorder: Option<Arc<Recorder>>,
    tickets: Option<Arc<TicketGate>>,
    ticks: AtomicU64,
    prefetching: Arc<AtomicUsize>,
    max_prefetches: usize,
    clock: Arc<dyn Clock>,
    cookies: CookieSecret,
}

fn rcode_class(rcode: u8, answers: u16) -> RcodeClass {
    match rcode {
        0 if answers == 0 => RcodeClass::Nodata,
        0 => RcodeClass::NoError,
        1 => RcodeClass::Malformed,
        2 => RcodeClass::Servfail,
        3 => RcodeClass::Nxdomain,
        5 => RcodeClass::Refused,
        _ => RcodeClass::Other,
    }
}

impl Engine {
    /// A new engine over `cache`, in NORMAL mode.
    pub fn new(
        config: EngineConfig,
        cache: Arc<Cache>,
        metrics: Metrics,
        recorder: Option<Arc<Recorder>>,
        now: Instant,
    ) -> Self {
        Self {
            cache,
            limiter: PrefixLimiter::new(&config.admission, now),
            rrl: ResponseLimiter::new(&config.admission),
            fsm: Mutex::new(AttackFsm::new(config.attack.clone())),
            mode: AtomicU8::new(Mode::Normal as u8),
            admission: config.admission,
            attack: config.attack,
            counters: TickCounters::default(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            metrics,
            recorder,
            tickets: None,
            ticks: AtomicU64::new(0),
            prefetching: Arc::new(AtomicUsize::new(0)),
            max_prefetches: config.max_prefetches,
            clock: Arc::new(SystemClock),
            cookies: CookieSecret::random(),
        }
    }

    /// Read time from `clock` instead of the system clocks: the instants of cache inserts and
    /// serve-stale lookups after an upstream answer, the response limits of resolved answers,
    /// answer latencies, and the wall clock of tickets and receipt leaves. Listeners take
    /// [`Request::received`] and the `now` of [`Engine::handle`] from the same clock
    /// ([`Engine::clock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock the engine reads (the system clock unless set with [`Engine::with_clock`]).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Redeem toll tickets with `gate` (see [`crate::TicketsConfig`]).
    #[must_use]
    pub fn with_tickets(mut self, gate: Arc<TicketGate>) -> Self {
        self.tickets = Some(gate);
        self
    }

    /// Count a ticket refusal decided outside the engine (a DoH credential header that does
    /// not decode).
    pub fn count_ticket_refusal(&self, refusal: tolldns_tickets::Refusal) {
        self.metrics.ticket_refused(refusal);
    }

    /// The ticket gate, when tickets are on.
    pub fn tickets(&self) -> Option<&Arc<TicketGate>> {
        self.tickets.as_ref()
    }

    /// Current attack mode.
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            1 => Mode::Suspicious,
            2 => Mode::UnderAttack,
            3 => Mode::Isolated,
            4 => Mode::Recovery,
            _ => Mode::Normal,
        }
    }

    fn knobs(&self) -> &ModeKnobs {
        self.attack.knobs(self.mode())
    }

    /// The metrics.
    pub const fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The receipt recorder, when receipts are on.
    pub fn recorder(&self) -> Option<&Arc<Recorder>> {
        self.recorder.as_ref()
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Queries waiting on upstreams now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn limit_for(&self, transport: Transport, q: &Query) -> usize {
        let stream = self.admission.max_response_size.clamp(512, MAX_MESSAGE);
        match transport {
            Transport::Udp => q
                .udp_limit()
                .min(self.admission.max_udp_response_size.max(512))
                .min(stream),
            _ => stream,
        }
    }

    /// Write a response the edge builds itself.
    fn local(
        query_bytes: &[u8],
        q: &Query,
        rcode: Rcode,
        out: &mut [u8],
        build: impl FnOnce(&mut ResponseWriter<'_>) -> Option<()>,
    ) -> Option<usize> {
        let question = query_bytes.get(wire::HEADER_LEN..q.question_end);
        let mut w = ResponseWriter::new(out, q.id, q.flags, question, rcode as u8)?;
        build(&mut w)?;
        if let Some(e) = q.edns {
            w.opt(EDNS_UDP_SIZE, 0, e.dnssec_ok)?;
        }
        Some(w.finish())
    }

    fn local_reply(
        &self,
        req: &Request<'_>,
        q: &Query,
        rcode: Rcode,
        class: RcodeClass,
        out: &mut [u8],
        build: impl FnOnce(&mut ResponseWriter<'_>) -> Option<()>,
    ) -> Step {
        let Some(len) = Self::local(req.query, q, rcode, out, build) else {
            self.metrics.admission(Decision::Dropped);
            return Step::Drop;
        };
        Step::Respond(Reply::plain(len, class, Some(*q)))
    }

    fn truncated_reply(&self, req: &Request<'_>, q: &Query, out: &mut [u8]) -> Step {
        self.metrics.admission(Decision::Truncated);
        let mut step = self.local_reply(req, q, Rcode::NoError, RcodeClass::NoError, out, |w| {
            w.truncated()
        });
        if let Step::Respond(r) = &mut step {
            r.truncated = true;
        }
        step
    }

    /// Decide what to do with one query, synchronously and without I/O: drop it, answer it
    /// into `out` (errors, RFC 8482, cache hits, limits) or forward it upstream.
    ///
    /// `out` should be [`MAX_MESSAGE`] bytes; a smaller buffer only makes more answers fail
    /// (dropped, counted). Never panics, whatever the bytes.
    ///
    /// UDP responses pass the response-rate limit and the amplification bound last (see
    /// [`ResponseLimiter`]): a limited one is replaced by an empty TC=1 reply or dropped.
    pub fn handle(&self, req: &Request<'_>, now: Instant, out: &mut [u8]) -> Step {
        let udp = req.transport == Transport::Udp;
        let mut ticket = TicketOutcome::Unticketed;
        match self.decide(req, now, out, &mut ticket) {
            Step::Respond(mut reply) => {
                self.attach_ticket(req.transport, &mut reply, ticket, out);
                let verified = self.attach_cookie(req, &mut reply, out);
                // The query is credited and its answer charged under one lock.
                if udp && !verified && !self.limit_udp(req, &mut reply, out, req.query.len(), now) {
                    return Step::Drop;
                }
                Step::Respond(reply)
            }
            Step::Forward(mut fwd) => {
                if udp {
                    self.rrl.earn(req.source, req.query.len(), now);
                }
                fwd.ticket = ticket;
                Step::Forward(fwd)
            }
            Step::Drop => Step::Drop,
        }
    }

    /// Apply the UDP response limits to `reply` (in `out`): true to send it (possibly replaced
    /// by an empty TC=1 reply), false to send nothing. Every change is counted.
    fn limit_udp(
        &self,
        req: &Request<'_>,
        reply: &mut Reply,
        out: &mut [u8],
        earned: usize,
        now: Instant,
    ) -> bool {
        if !self.rrl.enabled() {
            return true;
        }
        let category = if reply.truncated {
            ResponseCategory::Error
        } else {
            match reply.rcode {
                RcodeClass::NoError => ResponseCategory::Answer,
                RcodeClass::Nodata | RcodeClass::Nxdomain => ResponseCategory::Negative,
                _ => ResponseCategory::Error,
            }
        };
        let query = reply.query;
        let (qtype, name, tc_len) = match &query {
            Some(q) => (
                q.qtype,
                q.wire_name(),
                q.question_end
                    .saturating_add(if q.edns.is_some() { OPT_LEN } else { 0 })
                    .saturating_add(if q.cookies.is_some() {
                        COOKIE_OPTION_LEN
                    } else {
                        0
                    }),
            ),
            None => (0, &[][..], wire::HEADER_LEN),
        };
        let response = UdpResponse {
            category,
            qtype,
            name,
            len: reply.len,
            tc_len,
            earned,
        };
        let action = self.rrl.check(req.source, &response, now);
        let (action, send) = match action {
            ResponseAction::Send => (action, true),
            ResponseAction::Drop(_) => (action, false),
            ResponseAction::Slip(reason) => {
                let tc = query.and_then(|q| {
                    let len = Self::local(req.query, &q, Rcode::NoError, out, |w| w.truncated())?;
                    Some(Reply {
                        truncated: true,
                        ..Reply::plain(len, RcodeClass::NoError, Some(q))
                    })
                });
                match tc {
                    Some(tc) => {
                        *reply = tc;
                        // The client learns its server cookie even from a TC=1 reply, so its
                        // next query over UDP is verified.
                        if let Some(c) = query.and_then(|q| q.cookies) {
                            let now_secs = self.clock.unix_ms() / 1_000;
                            self.append_cookie(req, reply, &c, now_secs, out);
                        }
                        (action, true)
                    }
                    // Not even a question to echo: nothing to send.
                    None => (ResponseAction::Drop(reason), false),
                }
            }
        };
        self.metrics.abuse.udp_limited(action);
        send
    }

    /// DNS cookies (RFC 7873, [`crate::cookies`]): when the query carried a client cookie,
    /// append a COOKIE option with a fresh server cookie to the response. Returns whether the
    /// query's server cookie proved the source address (UDP only, counted; the UDP response
    /// limits do not apply then).
    fn attach_cookie(&self, req: &Request<'_>, reply: &mut Reply, out: &mut [u8]) -> bool {
        let Some(c) = reply.query.as_ref().and_then(|q| q.cookies) else {
            return false;
        };
        let now_secs = self.clock.unix_ms() / 1_000;
        let verified = req.transport == Transport::Udp && {
            let check = self.cookies.check(Some(&c), req.source, now_secs);
            self.metrics.abuse.cookie(check);
            check == CookieCheck::Valid
        };
        self.append_cookie(req, reply, &c, now_secs, out);
        verified
    }

    fn append_cookie(
        &self,
        req: &Request<'_>,
        reply: &mut Reply,
        c: &cookies::ClientCookies,
        now_secs: u64,
        out: &mut [u8],
    ) {
        let data = cookies::response_option(&self.cookies, c, req.source, now_secs);
        match wire::add_edns_option(out, reply.len, cookies::COOKIE_OPTION_CODE, &data) {
            Some(len) => reply.len = len,
            None => tracing::debug!("no room for the server cookie in the response"),
        }
    }

    /// Put what ticketing decided into a reply (and, over DNS transports, a new session ticket
    /// into the response's EDNS options).
    fn attach_ticket(
        &self,
        transport: Transport,
        reply: &mut Reply,
        ticket: TicketOutcome,
        out: &mut [u8],
    ) {
        let TicketOutcome::Ticketed {
            ticket_id,
            session_out,
        } = ticket
        else {
            return;
        };
        reply.ticket = Some(ticket_id);
        reply.session = session_out;
        if let (Some(session), false) = (session_out, transport == Transport::Doh) {
            match wire::add_edns_option(out, reply.len, wire::TICKET_OPTION_CODE, &session) {
                Some(len) => reply.len = len,
                None => tracing::debug!("no room for the session ticket in the response"),
            }
        }
    }

    /// Ticketing of one query, before admission. `pre` is the parsed query. Returns the
    /// outcome and, when the token path already asked the prefix limiter, its verdict.
    fn ticketing(
        &self,
        gate: &TicketGate,
        req: &Request<'_>,
        q: &Query,
        now: Instant,
    ) -> (TicketOutcome, Option<Verdict>) {
        let policy = gate.policy(req.transport);
        let credential = match req.credential {
            Credential::None => match (q.token, q.ticket) {
                (Some((at, n)), _) => {
                    let at = usize::from(at);
                    match req.query.get(at..at.saturating_add(usize::from(n))) {
                        Some(bytes) => Credential::Token(bytes),
                        None => {
                            return (
                                TicketOutcome::Refused(tolldns_tickets::Refusal::Malformed),
                                None,
                            );
                        }
                    }
                }
                (None, Some(session)) => Credential::Session(session),
                (None, None) => Credential::None,
            },
            c => c,
        };
        match credential {
            Credential::None if policy == TicketPolicy::Required => (
                TicketOutcome::Refused(tolldns_tickets::Refusal::TicketRequired),
                None,
            ),
            Credential::None => (TicketOutcome::Unticketed, None),
            Credential::Session(session) => {
                match gate.redeemer().charge(&session, self.clock.unix_ms()) {
                    Ok(c) => {
                        self.metrics.ticketed_query();
                        (
                            TicketOutcome::Ticketed {
                                ticket_id: c.ticket_id,
                                session_out: c.renewed,
                            },
                            None,
                        )
                    }
                    Err(r) => (TicketOutcome::Refused(r), None),
                }
            }
            Credential::Token(bytes) => {
                // A redemption costs one RSA verification: it passes the prefix's admission
                // first, like an unticketed query.
                let verdict = self.prefix_verdict(req, now);
                if !verdict.allowed {
                    return (TicketOutcome::Unticketed, Some(verdict));
                }
                match gate.redeemer().redeem(bytes, self.clock.unix_ms()) {
                    Ok(r) => {
                        self.metrics.ticket_redeemed();
                        self.metrics.ticketed_query();
                        self.metrics.ticket_sessions(gate.redeemer().sessions());
                        if let Some(recorder) = &self.recorder
                            && !recorder.redeemed(&r.token)
                        {
                            self.metrics.token_lost();
                        }
                        (
                            TicketOutcome::Ticketed {
                                ticket_id: r.token.ticket_id,
                                session_out: Some(r.session),
                            },
                            Some(verdict),
                        )
                    }
                    Err(r) => (TicketOutcome::Refused(r), Some(verdict)),
                }
            }
        }
    }

    /// The limits of the current mode.
    fn limits(&self) -> Limits {
        let knobs = *self.knobs();
        Limits {
            rate: scale(self.admission.rate_per_prefix, knobs.rate_permille),
            burst: scale(self.admission.burst_per_prefix, knobs.rate_permille),
            offender_permille: self.attack.offender.rate_permille,
            offender_for: Duration::from_secs(self.attack.offender_secs),
            tick: self.ticks.load(Ordering::Relaxed),
        }
    }

    fn prefix_verdict(&self, req: &Request<'_>, now: Instant) -> Verdict {
        // UDP and the address-proving transports have separate buckets: a spoofed UDP flood
        // cannot take a client's TCP fallback away.
        let proven = req.transport != Transport::Udp;
        let v = self.limiter.check(req.source, proven, now, &self.limits());
        if v.new_offender {
            self.counters.offenders.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(level) = v.limited_by {
            self.metrics.abuse.rate_limited(level);
        }
        v
    }

    /// A `REFUSED` answer with an RFC 8914 extended error naming the ticket refusal.
    fn ticket_refusal(
        &self,
        req: &Request<'_>,
        q: &Query,
        refusal: tolldns_tickets::Refusal,
        out: &mut [u8],
    ) -> Step {
        self.metrics.ticket_refused(refusal);
        let mut step = self.local_reply(
            req,
            q,
            Rcode::Refused,
            RcodeClass::PolicyBlocked,
            out,
            |_| Some(()),
        );
        if let Step::Respond(reply) = &mut step {
            reply.refusal = Some(refusal);
            let ede = tolldns_tickets::protocol::ede_data(
                tolldns_tickets::protocol::EDE_INFO_PROHIBITED,
                &refusal.client_text(),
            );
            if let Some(len) = wire::add_edns_option(
                out,
                reply.len,
                tolldns_tickets::protocol::EDE_OPTION_CODE,
                &ede,
            ) {
                reply.len = len;
            }
        }
        step
    }

    fn decide(
        &self,
        req: &Request<'_>,
        now: Instant,
        out: &mut [u8],
        ticket: &mut TicketOutcome,
    ) -> Step {
        self.metrics.query(req.transport);
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        let Some((id, flags)) = wire::header(req.query) else {
            self.metrics.admission(Decision::Dropped);
            return Step::Drop;
        };
        if flags & 0x8000 != 0 {
            self.metrics.admission(Decision::Dropped);
            return Step::Drop;
        }
        // Tickets first where a listener looks at them (a ticketed query has its session's own
        // budget); otherwise admission before any further parsing.
        let knobs = *self.knobs();
        let mut pre = None;
        let mut checked = None;
        if let Some(gate) = self.tickets.as_deref()
            && gate.policy(req.transport) != TicketPolicy::Off
            && let Ok(q) = wire::parse_query(req.query)
        {
            let (outcome, verdict) = self.ticketing(gate, req, &q, now);
            if let TicketOutcome::Refused(r) = outcome {
                if verdict.is_none_or(|v| v.allowed) {
                    return self.ticket_refusal(req, &q, r, out);
                }
            } else {
                *ticket = outcome;
            }
            checked = verdict;
            pre = Some(q);
        }
        let ticketed = matches!(ticket, TicketOutcome::Ticketed { .. });
        let verdict = if ticketed {
            Verdict::trusted()
        } else if let Some(v) = checked {
            v
        } else {
            self.prefix_verdict(req, now)
        };
        if !verdict.allowed {
            // Counted per distinct offender (`Signals::offenders`), not per query: one
            // prefix's flood weighs as one prefix in the global mode.
            self.metrics.admission(Decision::RateLimited);
            if req.transport == Transport::Udp {
                return Step::Drop;
            }
            return self.header_only(id, flags, Rcode::Refused, RcodeClass::PolicyBlocked, out);
        }
        let parsed = match pre {
            Some(q) => Ok(q),
            None => wire::parse_query(req.query),
        };
        let q = match parsed {
            Ok(q) => q,
            Err(ParseError::NoHeader | ParseError::Response) => {
                self.metrics.admission(Decision::Dropped);
                return Step::Drop;
            }
            Err(ParseError::NotImplemented(_)) => {
                self.metrics.admission(Decision::Malformed);
                return self.header_only(id, flags, Rcode::NotImp, RcodeClass::Other, out);
            }
            Err(ParseError::BadVersion(_)) => {
                self.metrics.admission(Decision::Malformed);
                // BADVERS: extended rcode 16 = upper bits 1, header rcode 0.
                let Some(mut w) = ResponseWriter::new(out, id, flags, None, 0) else {
                    return Step::Drop;
                };
                if w.opt(EDNS_UDP_SIZE, 1, false).is_none() {
                    return Step::Drop;
                }
                return Step::Respond(Reply::plain(w.finish(), RcodeClass::Malformed, None));
            }
            Err(ParseError::Malformed(_)) => {
                self.metrics.admission(Decision::Malformed);
                return self.header_only(id, flags, Rcode::FormErr, RcodeClass::Malformed, out);
            }
        };
        // The attack treatment of this query: the mode's knobs, and the offender knobs when its
        // prefix (or an enclosing one) is offending. An offending prefix counts as unknown.
        let knobs = if verdict.offending {
            knobs.stricter(&self.attack.offender)
        } else {
            knobs
        };
        let known = verdict.known && !verdict.offending;
        // Before anything is answered (cache hits included): an unknown source over UDP gets
        // TC=1, so only a source that proves its address over TCP gets more than its query's
        // size back.
        if !known && knobs.tc_udp_unknown && req.transport == Transport::Udp {
            return self.truncated_reply(req, &q, out);
        }
        if q.qclass != 1 {
            self.metrics.admission(Decision::Refused);
            return self.local_reply(req, &q, Rcode::Refused, RcodeClass::Refused, out, |_| {
                Some(())
            });
        }
        if q.qtype == wire::TYPE_ANY {
            self.metrics.admission(Decision::Any);
            return self.local_reply(req, &q, Rcode::NoError, RcodeClass::NoError, out, |w| {
                w.rfc8482_answer(ANY_TTL)
            });
        }
        let key = CacheKey::new(
            q.wire_name(),
            q.qtype,
            q.qclass,
            q.dnssec_ok(),
            q.checking_disabled(),
        );
        let limit = self.limit_for(req.transport, &q);
        match self.cache.lookup(&key, q.id, now, out) {
            Lookup::Hit {
                len,
                min_ttl,
                prefetch,
            } => {
                self.metrics.cache(true, false);
                self.metrics.admission(Decision::Allowed);
                let (len, info) = Self::fit(out, len, req.query, &q);
                if len > limit {
                    return self.truncated_reply(req, &q, out);
                }
                let mut min_ttl = min_ttl;
                if verdict.offending && knobs.ttl_clamp.is_some() {
                    // The global clamp is applied by the cache; an offender's is applied here.
                    if let Some(i) = out
                        .get_mut(..len)
                        .and_then(|m| wire::scan_response(m, knobs.ttl_clamp))
                    {
                        min_ttl = i.min_ttl.unwrap_or(min_ttl);
                    }
                }
                return Step::Respond(Reply {
                    min_ttl: Some(min_ttl),
                    cache_hit: true,
                    truncated: info.truncated,
                    prefetch,
                    ..Reply::plain(len, rcode_class(info.rcode, info.answers), Some(q))
                });
            }
            Lookup::Stale { .. } | Lookup::Miss | Lookup::BufferTooSmall { .. } => {
                self.metrics.cache(false, false);
            }
        }
        if !known && knobs.cache_only_unknown {
            self.metrics.admission(Decision::CacheOnlyRefused);
            return self.local_reply(
                req,
                &q,
                Rcode::Refused,
                RcodeClass::PolicyBlocked,
                out,
                |_| Some(()),
            );
        }
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let slot = InFlightSlot(Arc::clone(&self.in_flight));
        // With tickets on, a quarter of the in-flight slots is kept for ticketed queries.
        let in_flight_limit = if self.tickets.is_some() && !ticketed {
            self.admission.max_in_flight - self.admission.max_in_flight / 4
        } else {
            self.admission.max_in_flight
        };
        if before >= in_flight_limit {
            drop(slot);
            self.counters.limited.fetch_add(1, Ordering::Relaxed);
            self.metrics.admission(Decision::InFlightLimited);
            return self.local_reply(req, &q, Rcode::ServFail, RcodeClass::Servfail, out, |_| {
                Some(())
            });
        }
        self.counters.in_flight_peak.fetch_max(
            u64::try_from(before.saturating_add(1)).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.metrics.admission(Decision::Allowed);
        Step::Forward(Box::new(Forward {
            query: q,
            key,
            limit,
            clamp: knobs.ttl_clamp,
            ticket: TicketOutcome::Unticketed,
            _slot: slot,
        }))
    }

    /// Finish an answer copied into `out[..len]` for the client of `query`: its question's
    /// letter case, and EDNS as it asked (RFC 6891 §7: no OPT for a client that sent none).
    /// Returns the new length and the answer's facts.
    fn fit(out: &mut [u8], len: usize, query: &[u8], q: &Query) -> (usize, wire::ResponseInfo) {
        let info = out
            .get_mut(..len)
            .and_then(|m| wire::scan_response(m, None))
            .unwrap_or_default();
        (Self::fit_scanned(out, len, query, q, &info), info)
    }

    /// [`Engine::fit`] for an answer whose facts a scan of `out[..len]` already gave.
    fn fit_scanned(
        out: &mut [u8],
        len: usize,
        query: &[u8],
        q: &Query,
        info: &wire::ResponseInfo,
    ) -> usize {
        if let Some(m) = out.get_mut(..len) {
            wire::restore_question_case(m, query, q.question_end);
        }
        wire::fit_edns(out, len, info, q.edns, EDNS_UDP_SIZE).unwrap_or(len)
    }

    /// A slot for one background refresh, when fewer than the configured number are running;
    /// `None` (counted as skipped) otherwise.
    pub fn prefetch_slot(&self) -> Option<PrefetchSlot> {
        let before = self.prefetching.fetch_add(1, Ordering::Relaxed);
        let slot = PrefetchSlot(Arc::clone(&self.prefetching));
        if before >= self.max_prefetches {
            drop(slot);
            self.metrics.prefetch(Prefetch::Skipped);
            return None;
        }
        self.metrics.prefetch(Prefetch::Started);
        Some(slot)
    }

    /// Background refreshes running now.
    pub fn prefetches_running(&self) -> usize {
        self.prefetching.load(Ordering::Relaxed)
    }

    /// Refresh the cache entry of `query` (the client's packet, answered from a hit that
    /// reported prefetch due) from the upstream pool, holding `slot` until done. Returns
    /// whether a new answer was cached; failures are counted, and the old entry stays.
    pub async fn prefetch(&self, pool: &UpstreamPool, query: &[u8], slot: PrefetchSlot) -> bool {
        let parsed = wire::parse_query(query).ok();
        let question = parsed.as_ref().and_then(|q| upstream_question(query, q));
        let ok = match (parsed, question) {
            (Some(q), Some(question)) => {
                let key = CacheKey::new(
                    q.wire_name(),
                    q.qtype,
                    q.qclass,
                    q.dnssec_ok(),
                    q.checking_disabled(),
                );
                self.counters.upstream.fetch_add(1, Ordering::Relaxed);
                match pool.resolve(&question).await {
                    Ok(answer) => {
                        self.metrics.upstream(true, answer.rtt.as_secs_f64());
                        self.quorum_check(&answer)
                            && self
                                .cache
                                .insert_checked(
                                    &key,
                                    &answer.message,
                                    answer.checked(),
                                    self.clock.now(),
                                )
                                .is_ok()
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "prefetch failed");
                        self.counters
                            .upstream_failures
                            .fetch_add(1, Ordering::Relaxed);
                        self.metrics.upstream(false, 0.0);
                        false
                    }
                }
            }
            _ => false,
        };
        if !ok {
            self.metrics.prefetch(Prefetch::Failed);
        }
        drop(slot);
        ok
    }

    /// Whether to cache `answer`, counting quorum agreement and disagreement.
    fn quorum_check(&self, answer: &UpstreamAnswer) -> bool {
        let ok = cacheable(answer);
        if answer.ttl_cap.is_some() {
            self.metrics.abuse.quorum(ok);
            if !ok {
                tracing::debug!(
                    confidence = ?answer.confidence,
                    "upstreams disagree: answered, not cached"
                );
            }
        }
        ok
    }

    fn header_only(
        &self,
        id: u16,
        flags: u16,
        rcode: Rcode,
        class: RcodeClass,
        out: &mut [u8],
    ) -> Step {
        match ResponseWriter::new(out, id, flags, None, rcode as u8) {
            Some(w) => Step::Respond(Reply::plain(w.finish(), class, None)),
            None => Step::Drop,
        }
    }

    /// Resolve a forwarded query upstream and write the answer (or SERVFAIL, or a stale answer
    /// when every upstream failed) into `out`.
    pub async fn resolve(
        &self,
        pool: &UpstreamPool,
        req: &Request<'_>,
        fwd: Box<Forward>,
        out: &mut [u8],
    ) -> Reply {
        let ticket = fwd.ticket;
        let mut reply = self.resolve_inner(pool, req, fwd, out).await;
        self.attach_ticket(req.transport, &mut reply, ticket, out);
        let verified = self.attach_cookie(req, &mut reply, out);
        if req.transport == Transport::Udp
            && !verified
            && !self.limit_udp(req, &mut reply, out, 0, self.clock.now())
        {
            // Nothing is sent for an empty reply.
            reply.len = 0;
        }
        reply
    }

    async fn resolve_inner(
        &self,
        pool: &UpstreamPool,
        req: &Request<'_>,
        fwd: Box<Forward>,
        out: &mut [u8],
    ) -> Reply {
        let q = fwd.query;
        let fail = |engine: &Self, out: &mut [u8]| -> Reply {
            match engine
                .cache
                .lookup_stale(&fwd.key, q.id, engine.clock.now(), out)
            {
                Lookup::Stale { len } | Lookup::Hit { len, .. } => {
                    engine.metrics.cache(false, true);
                    let (len, info) = Self::fit(out, len, req.query, &q);
                    if len <= fwd.limit {
                        return Reply {
                            min_ttl: info.min_ttl,
                            cache_hit: true,
                            stale: true,
                            ..Reply::plain(len, rcode_class(info.rcode, info.answers), Some(q))
                        };
                    }
                }
                _ => {}
            }
            let len = Self::local(req.query, &q, Rcode::ServFail, out, |_| Some(())).unwrap_or(0);
            Reply::plain(len, RcodeClass::UpstreamFail, Some(q))
        };
        let Some(question) = upstream_question(req.query, &q) else {
            let len = Self::local(req.query, &q, Rcode::FormErr, out, |_| Some(())).unwrap_or(0);
            return Reply::plain(len, RcodeClass::Malformed, Some(q));
        };
        self.counters.upstream.fetch_add(1, Ordering::Relaxed);
        let answer = match pool.resolve(&question).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "upstream resolution failed");
                self.counters
                    .upstream_failures
                    .fetch_add(1, Ordering::Relaxed);
                self.metrics.upstream(false, 0.0);
                return fail(self, out);
            }
        };
        self.metrics.upstream(true, answer.rtt.as_secs_f64());
        // The pool walked and checked the whole answer; the cache stores it on those facts
        // (with the quorum's TTL cap) without parsing it again, and the client's copy gets one
        // walk that sets its TTLs and reads what the reply needs.
        if self.quorum_check(&answer)
            && let Err(e) = self.cache.insert_checked(
                &fwd.key,
                &answer.message,
                answer.checked(),
                self.clock.now(),
            )
        {
            tracing::trace!(error = %e, "answer not cached");
        }
        let clamp = [fwd.clamp, self.knobs().ttl_clamp, answer.ttl_cap]
            .into_iter()
            .flatten()
            .min();
        let message = &answer.message;
        let Some(dst) = out.get_mut(..message.len()) else {
            return fail(self, out);
        };
        dst.copy_from_slice(message);
        wire::set_id(dst, q.id);
        let info = wire::scan_response(dst, clamp).unwrap_or_default();
        let len = Self::fit_scanned(out, message.len(), req.query, &q, &info);
        if len > fwd.limit {
            let len =
                Self::local(req.query, &q, Rcode::NoError, out, |w| w.truncated()).unwrap_or(0);
            self.metrics.admission(Decision::Truncated);
            return Reply {
                truncated: true,
                ..Reply::plain(len, RcodeClass::NoError, Some(q))
            };
        }
        Reply {
            min_ttl: info.min_ttl,
            truncated: info.truncated,
            ..Reply::plain(len, rcode_class(info.rcode, info.answers), Some(q))
        }
    }

    /// Bookkeeping after `response` (= `out[..reply.len]`) was sent: metrics and the receipt
    /// leaf. The latency is measured from [`Request::received`] to now on the engine's clock.
    pub fn complete(&self, req: &Request<'_>, reply: &Reply, response: &[u8]) {
        let elapsed = self.clock.now().saturating_duration_since(req.received);
        self.metrics
            .response(req.transport, reply.rcode, elapsed.as_secs_f64());
        let Some(recorder) = &self.recorder else {
            return;
        };
        let mut name_buf = [0u8; wire::MAX_WIRE_NAME];
        let name = reply.query.as_ref().map(|q| q.dotted_name(&mut name_buf));
        let ticket = reply.ticket.unwrap_or([0; 16]);
        let recorded = recorder.record_at(
            &Answered {
                transport: req.transport,
                qtype: reply.query.map_or(0, |q| q.qtype),
                name: name.and_then(|n| name_buf.get(..n)),
                rcode_class: reply.rcode,
                cache_hit: reply.cache_hit,
                stale: reply.stale,
                truncated: reply.truncated,
                latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                response,
                ticket,
            },
            self.clock.unix_ms(),
        );
        self.metrics.leaf(recorded);
    }

    /// Evaluate the attack-mode state machine over the counters gathered since the last tick.
    pub fn tick(&self, now: Instant) -> Option<Transition> {
        let c = &self.counters;
        let signals = Signals {
            queries: c.queries.swap(0, Ordering::Relaxed),
            limited: c.limited.swap(0, Ordering::Relaxed),
            offenders: c.offenders.swap(0, Ordering::Relaxed),
            upstream_queries: c.upstream.swap(0, Ordering::Relaxed),
            upstream_failures: c.upstream_failures.swap(0, Ordering::Relaxed),
            in_flight_peak: c.in_flight_peak.swap(0, Ordering::Relaxed),
            in_flight_limit: u64::try_from(self.admission.max_in_flight).unwrap_or(u64::MAX),
        };
        let transition = {
            let mut fsm = self
                .fsm
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            fsm.tick(now, &signals)
        };
        if let Some(t) = transition {
            self.mode.store(t.to as u8, Ordering::Relaxed);
            self.cache
                .set_attack_max_ttl(self.attack.knobs(t.to).ttl_clamp);
            self.metrics.mode(t.to);
            tracing::warn!(
                from = t.from.as_str(),
                to = t.to.as_str(),
                "attack mode changed"
            );
        }
        if let Some(gate) = &self.tickets
            && let Some(dropped) = gate.maybe_rotate(now)
        {
            tracing::info!(dropped, "session key rotated");
            self.metrics.ticket_sessions(gate.redeemer().sessions());
        }
        let n = self.ticks.fetch_add(1, Ordering::Relaxed);
        if n % 30 == 29 {
            let report = self.limiter.sweep(now, &self.limits());
            self.metrics.abuse.offenders(report.offending);
        }
        transition
    }
}

fn scale(v: u32, permille: u32) -> u32 {
    let s = u64::from(v).saturating_mul(u64::from(permille)) / 1000;
    u32::try_from(s).unwrap_or(u32::MAX).max(1)
}
