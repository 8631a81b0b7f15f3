//! The attack-mode state machine (sans-IO).
//!
//! Once per tick the edge feeds the [`Signals`] it measured over that tick to
//! [`AttackFsm::tick`] with the current `now`. Each tick is scored; a tick with a zero score is
//! *stable*. Escalation is immediate; every step back down requires an unbroken streak of stable
//! ticks of the configured length, measured from the first stable tick of the streak
//! (`stable_since`, reset on any unstable tick and restarted on every transition). So
//! UNDER_ATTACK → RECOVERY needs a full streak, and RECOVERY → NORMAL needs another full streak
//! that starts in RECOVERY: a stale calm period from before an attack never counts.
//!
//! The global mode reacts to pressure on the edge as a whole (many prefixes over their rates,
//! the in-flight limit, failing upstreams), never to one prefix: a prefix over its rate is an
//! *offender* and gets the [`AttackConfig::offender`] treatment on its own, for
//! [`AttackConfig::offender_secs`] after its last refused query. One prefix's flood counts as
//! one offender per tick.

use std::time::{Duration, Instant};

use serde::Deserialize;

/// Operating mode of the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Regular service.
    Normal = 0,
    /// Signals above the low threshold: limits tightened.
    Suspicious = 1,
    /// Signals above the high threshold.
    UnderAttack = 2,
    /// Upstreams are failing almost entirely: serve what the cache has.
    Isolated = 3,
    /// Calm after an attack; limits stay tight until a full stable streak.
    Recovery = 4,
}

impl Mode {
    /// All modes, in tag order.
    pub const ALL: [Self; 5] = [
        Self::Normal,
        Self::Suspicious,
        Self::UnderAttack,
        Self::Isolated,
        Self::Recovery,
    ];

    /// Upper-case name (`NORMAL`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Suspicious => "SUSPICIOUS",
            Self::UnderAttack => "UNDER_ATTACK",
            Self::Isolated => "ISOLATED",
            Self::Recovery => "RECOVERY",
        }
    }

    /// Index in [`Mode::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// What the edge measured over one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// Queries received.
    pub queries: u64,
    /// Queries refused by the global in-flight limit. (Per-prefix rate limiting is counted as
    /// `offenders`, so that one prefix's flood weighs as one prefix.)
    pub limited: u64,
    /// Distinct prefixes (at any level of the hierarchy) that were refused for their rate during
    /// the tick.
    pub offenders: u64,
    /// Upstream exchanges attempted.
    pub upstream_queries: u64,
    /// Upstream exchanges that failed.
    pub upstream_failures: u64,
    /// Highest number of queries waiting on upstreams during the tick.
    pub in_flight_peak: u64,
    /// The in-flight limit.
    pub in_flight_limit: u64,
}

/// Per-mode policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModeKnobs {
    /// Per-prefix rate and burst, in thousandths of the configured NORMAL values.
    pub rate_permille: u32,
    /// Largest TTL served (seconds); `None` leaves TTLs alone.
    pub ttl_clamp: Option<u32>,
    /// Prefixes not yet *known* get cache answers only (REFUSED on a miss).
    pub cache_only_unknown: bool,
    /// UDP queries from unknown prefixes that miss the cache get TC=1 (retry over TCP, which
    /// proves the source address) instead of being forwarded.
    pub tc_udp_unknown: bool,
}

impl ModeKnobs {
    /// The stricter of `self` and `other`, knob by knob (lower rate, lower TTL clamp, either
    /// restriction).
    pub fn stricter(&self, other: &Self) -> Self {
        Self {
            rate_permille: self.rate_permille.min(other.rate_permille),
            ttl_clamp: match (self.ttl_clamp, other.ttl_clamp) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            cache_only_unknown: self.cache_only_unknown || other.cache_only_unknown,
            tc_udp_unknown: self.tc_udp_unknown || other.tc_udp_unknown,
        }
    }
}

impl Default for ModeKnobs {
    fn default() -> Self {
        Self {
            rate_permille: 1000,
            ttl_clamp: None,
            cache_only_unknown: false,
            tc_udp_unknown: false,
        }
    }
}

/// Thresholds, timings and per-mode knobs of the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttackConfig {
    /// Run the state machine at all (false pins NORMAL).
    pub enabled: bool,
    /// Milliseconds between evaluations. (Earlier name `tick_millis`, still accepted.)
    #[serde(alias = "tick_millis")]
    pub tick_ms: u64,
    /// Fewer queries than this in a tick make the fractions meaningless: they score 0.
    pub min_queries: u64,
    /// Fewer upstream exchanges than this make the failure rate meaningless.
    pub min_upstream_queries: u64,
    /// Fraction (percent) of queries refused by the in-flight limit scoring +20 (default 10).
    pub limited_pct_suspicious: u64,
    /// Fraction (percent) of queries refused by the in-flight limit scoring +60 (default 50).
    pub limited_pct_attack: u64,
    /// Distinct offending prefixes in one tick scoring +20 (default 50).
    pub offenders_suspicious: u64,
    /// Distinct offending prefixes in one tick scoring +60 (default 500).
    pub offenders_attack: u64,
    /// Seconds a prefix stays offending after its last query refused for its rate (default 60).
    pub offender_secs: u64,
    /// Upstream failure rate (percent) scoring +30.
    pub upstream_fail_pct: u64,
    /// Upstream failure rate (percent) that isolates the edge.
    pub upstream_fail_pct_isolate: u64,
    /// In-flight saturation (percent of the limit) scoring +40.
    pub in_flight_pct: u64,
    /// Score from which a tick means SUSPICIOUS.
    pub score_suspicious: u32,
    /// Score from which a tick means UNDER_ATTACK.
    pub score_attack: u32,
    /// Stable streak (seconds) to leave SUSPICIOUS for NORMAL.
    pub suspicious_calm_secs: u64,
    /// Stable streak (seconds) for each step of the way back from UNDER_ATTACK or ISOLATED
    /// (to RECOVERY, then to NORMAL).
    pub recovery_stable_secs: u64,
    /// Knobs in NORMAL.
    pub normal: ModeKnobs,
    /// Knobs in SUSPICIOUS.
    pub suspicious: ModeKnobs,
    /// Knobs in UNDER_ATTACK.
    pub under_attack: ModeKnobs,
    /// Knobs in ISOLATED.
    pub isolated: ModeKnobs,
    /// Knobs in RECOVERY.
    pub recovery: ModeKnobs,
    /// Knobs applied to offending prefixes only, whatever the mode (the stricter of these and
    /// the mode's knobs win). An offending prefix counts as *unknown*: by default its UDP
    /// queries get TC=1 (cache hits included) and its rate is cut to a fifth.
    pub offender: ModeKnobs,
}

impl Default for AttackConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_ms: 1000,
            min_queries: 100,
            min_upstream_queries: 20,
            limited_pct_suspicious: 10,
            limited_pct_attack: 50,
            offenders_suspicious: 50,
            offenders_attack: 500,
            offender_secs: 60,
            upstream_fail_pct: 30,
            upstream_fail_pct_isolate: 90,
            in_flight_pct: 90,
            score_suspicious: 20,
            score_attack: 60,
            suspicious_calm_secs: 60,
            recovery_stable_secs: 600,
            normal: ModeKnobs::default(),
            suspicious: ModeKnobs {
                rate_permille: 500,
                ttl_clamp: Some(300),
                ..ModeKnobs::default()
            },
            under_attack: ModeKnobs {
                rate_permille: 200,
                ttl_clamp: Some(60),
                cache_only_unknown: false,
                tc_udp_unknown: true,
            },
            isolated: ModeKnobs {
                rate_permille: 100,
                ttl_clamp: Some(60),
                cache_only_unknown: true,
                tc_udp_unknown: true,
            },
            recovery: ModeKnobs {
                rate_permille: 500,
                ttl_clamp: Some(300),
                ..ModeKnobs::default()
            },
            offender: ModeKnobs {
                rate_permille: 200,
                ttl_clamp: Some(60),
                cache_only_unknown: false,
                tc_udp_unknown: true,
            },
        }
    }
}

impl AttackConfig {
    /// The knobs of `mode`.
    pub const fn knobs(&self, mode: Mode) -> &ModeKnobs {
        match mode {
            Mode::Normal => &self.normal,
            Mode::Suspicious => &self.suspicious,
            Mode::UnderAttack => &self.under_attack,
            Mode::Isolated => &self.isolated,
            Mode::Recovery => &self.recovery,
        }
    }
}

fn pct(part: u64, whole: u64) -> u64 {
    part.saturating_mul(100).checked_div(whole).unwrap_or(0)
}

/// The evaluation of one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assessment {
    /// 0 to 100.
    pub score: u32,
    /// Upstreams are failing past the isolation threshold.
    pub isolate: bool,
}

impl Assessment {
    /// Whether the tick counts toward a stable streak.
    pub const fn is_stable(&self) -> bool {
        self.score == 0 && !self.isolate
    }
}

/// Score one tick's signals.
pub fn assess(cfg: &AttackConfig, s: &Signals) -> Assessment {
    let mut score = 0u32;
    if s.queries >= cfg.min_queries {
        let limited = pct(s.limited, s.queries);
        if limited > cfg.limited_pct_attack {
            score = score.saturating_add(60);
        } else if limited > cfg.limited_pct_suspicious {
            score = score.saturating_add(20);
        }
    }
    if cfg.offenders_attack > 0 && s.offenders >= cfg.offenders_attack {
        score = score.saturating_add(60);
    } else if cfg.offenders_suspicious > 0 && s.offenders >= cfg.offenders_suspicious {
        score = score.saturating_add(20);
    }
    let mut isolate = false;
    if s.upstream_queries >= cfg.min_upstream_queries {
        let fail = pct(s.upstream_failures, s.upstream_queries);
        if fail > cfg.upstream_fail_pct {
            score = score.saturating_add(30);
        }
        isolate = fail >= cfg.upstream_fail_pct_isolate;
    }
    if s.in_flight_limit > 0 && pct(s.in_flight_peak, s.in_flight_limit) >= cfg.in_flight_pct {
        score = score.saturating_add(40);
    }
    Assessment {
        score: score.min(100),
        isolate,
    }
}

/// A mode change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Mode before.
    pub from: Mode,
    /// Mode after.
    pub to: Mode,
}

/// The state machine.
#[derive(Debug, Clone)]
pub struct AttackFsm {
    config: AttackConfig,
    mode: Mode,
    stable_since: Option<Instant>,
}

impl AttackFsm {
    /// Start in NORMAL.
    pub fn new(config: AttackConfig) -> Self {
        Self {
            config,
            mode: Mode::Normal,
            stable_since: None,
        }
    }

    /// Current mode.
    pub const fn mode(&self) -> Mode {
        self.mode
    }

    /// The configuration.
    pub const fn config(&self) -> &AttackConfig {
        &self.config
    }

    /// Current knobs.
    pub const fn knobs(&self) -> &ModeKnobs {
        self.config.knobs(self.mode)
    }

    /// Start of the current stable streak, if the last tick was stable.
    pub const fn stable_since(&self) -> Option<Instant> {
        self.stable_since
    }

    fn streak_at_least(&self, now: Instant, secs: u64) -> bool {
        self.stable_since
            .is_some_and(|s| now.saturating_duration_since(s) >= Duration::from_secs(secs))
    }

    /// Evaluate one tick. Returns the transition, if any.
    pub fn tick(&mut self, now: Instant, signals: &Signals) -> Option<Transition> {
        if !self.config.enabled {
            return None;
        }
        let a = assess(&self.config, signals);
        let stable = a.is_stable();
        if stable {
            // Keep the start of the streak; only a new streak starts at `now`.
            self.stable_since = Some(self.stable_since.unwrap_or(now));
        } else {
            self.stable_since = None;
        }
        let cfg = &self.config;
        let level = if a.isolate {
            Mode::Isolated
        } else if a.score >= cfg.score_attack {
            Mode::UnderAttack
        } else if a.score >= cfg.score_suspicious {
            Mode::Suspicious
        } else {
            Mode::Normal
        };
        let next = match self.mode {
            Mode::Normal => level,
            Mode::Suspicious => match level {
                Mode::Isolated | Mode::UnderAttack => level,
                _ if self.streak_at_least(now, cfg.suspicious_calm_secs) => Mode::Normal,
                _ => Mode::Suspicious,
            },
            Mode::UnderAttack => match level {
                Mode::Isolated => Mode::Isolated,
                _ if self.streak_at_least(now, cfg.recovery_stable_secs) => Mode::Recovery,
                _ => Mode::UnderAttack,
            },
            Mode::Isolated => {
                if self.streak_at_least(now, cfg.recovery_stable_secs) {
                    Mode::Recovery
                } else {
                    Mode::Isolated
                }
            }
            Mode::Recovery => match level {
                Mode::Isolated | Mode::UnderAttack | Mode::Suspicious => level,
                _ if self.streak_at_least(now, cfg.recovery_stable_secs) => Mode::Normal,
                _ => Mode::Recovery,
            },
        };
        if next == self.mode {
            return None;
        }
        let t = Transition {
            from: self.mode,
            to: next,
        };
        self.mode = next;
        // Every step requires its own full streak, starting now.
        self.stable_since = if stable { Some(now) } else { None };
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Signals {
        Signals {
            queries: 1000,
            ..Signals::default()
        }
    }

    fn flood() -> Signals {
        Signals {
            queries: 1000,
            limited: 900,
            ..Signals::default()
        }
    }

    fn noisy() -> Signals {
        Signals {
            queries: 1000,
            limited: 200,
            ..Signals::default()
        }
    }

    fn dead_upstreams() -> Signals {
        Signals {
            queries: 1000,
            upstream_queries: 100,
            upstream_failures: 100,
            ..Signals::default()
        }
    }

    fn run(
        fsm: &mut AttackFsm,
        t0: Instant,
        from_s: u64,
        to_s: u64,
        s: Signals,
    ) -> Vec<(u64, Transition)> {
        (from_s..to_s)
            .filter_map(|sec| {
                fsm.tick(t0 + Duration::from_secs(sec), &s)
                    .map(|t| (sec, t))
            })
            .collect()
    }

    #[test]
    fn scoring() {
        let c = AttackConfig::default();
        assert!(assess(&c, &calm()).is_stable());
        assert_eq!(assess(&c, &noisy()).score, 20);
        assert_eq!(assess(&c, &flood()).score, 60);
        assert!(assess(&c, &dead_upstreams()).isolate);
        // Too few queries: no signal.
        let few = Signals {
            queries: 10,
            limited: 10,
            ..Signals::default()
        };
        assert!(assess(&c, &few).is_stable());
        let sat = Signals {
            in_flight_peak: 95,
            in_flight_limit: 100,
            ..Signals::default()
        };
        assert_eq!(assess(&c, &sat).score, 40);
        // One offending prefix is no signal; hundreds are.
        let one = Signals {
            queries: 100_000,
            offenders: 1,
            ..Signals::default()
        };
        assert!(assess(&c, &one).is_stable());
        let many = Signals {
            offenders: 500,
            ..Signals::default()
        };
        assert_eq!(assess(&c, &many).score, 60);
        let some = Signals {
            offenders: 50,
            ..Signals::default()
        };
        assert_eq!(assess(&c, &some).score, 20);
    }

    #[test]
    fn stricter_knobs() {
        let c = AttackConfig::default();
        let k = c.normal.stricter(&c.offender);
        assert_eq!(k, c.offender);
        let k = c.isolated.stricter(&c.offender);
        assert_eq!(k.rate_permille, 100);
        assert!(k.cache_only_unknown && k.tc_udp_unknown);
        assert_eq!(k.ttl_clamp, Some(60));
    }

    #[test]
    fn full_cycle_needs_a_full_streak_at_each_step() {
        let t0 = Instant::now();
        let mut fsm = AttackFsm::new(AttackConfig::default());
        assert!(run(&mut fsm, t0, 0, 100, calm()).is_empty());
        let t = run(&mut fsm, t0, 100, 110, flood());
        assert_eq!(
            t,
            vec![(
                100,
                Transition {
                    from: Mode::Normal,
                    to: Mode::UnderAttack
                }
            )]
        );
        // Calm from 110 on: RECOVERY exactly after 600 s of streak (110 + 600).
        let t = run(&mut fsm, t0, 110, 1400, calm());
        assert_eq!(
            t,
            vec![
                (
                    710,
                    Transition {
                        from: Mode::UnderAttack,
                        to: Mode::Recovery
                    }
                ),
                (
                    1310,
                    Transition {
                        from: Mode::Recovery,
                        to: Mode::Normal
                    }
                ),
            ]
        );
    }

    #[test]
    fn an_unstable_tick_resets_the_streak() {
        let t0 = Instant::now();
        let mut fsm = AttackFsm::new(AttackConfig::default());
        run(&mut fsm, t0, 0, 1, flood());
        assert_eq!(fsm.mode(), Mode::UnderAttack);
        assert!(run(&mut fsm, t0, 1, 500, calm()).is_empty());
        // One noisy tick at 500 (below the attack level) resets the streak, mode stays.
        assert!(run(&mut fsm, t0, 500, 501, noisy()).is_empty());
        assert_eq!(fsm.stable_since(), None);
        let t = run(&mut fsm, t0, 501, 1200, calm());
        assert_eq!(
            t[0],
            (
                1101,
                Transition {
                    from: Mode::UnderAttack,
                    to: Mode::Recovery
                }
            )
        );
    }

    #[test]
    fn the_prototype_bug_does_not_happen() {
        // A calm period long before an attack must not let UNDER_ATTACK jump to NORMAL, and
        // frequent polling must still let RECOVERY reach NORMAL.
        let t0 = Instant::now();
        let mut fsm = AttackFsm::new(AttackConfig::default());
        run(&mut fsm, t0, 0, 2000, calm());
        run(&mut fsm, t0, 2000, 2001, flood());
        let t = fsm.tick(t0 + Duration::from_secs(2001), &calm());
        assert_eq!(t, None);
        assert_eq!(fsm.mode(), Mode::UnderAttack);
        let ts = run(&mut fsm, t0, 2002, 4000, calm());
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[1].1.to, Mode::Normal);
    }

    #[test]
    fn recovery_escalates_and_isolation_is_sticky() {
        let t0 = Instant::now();
        let mut fsm = AttackFsm::new(AttackConfig::default());
        run(&mut fsm, t0, 0, 1, dead_upstreams());
        assert_eq!(fsm.mode(), Mode::Isolated);
        // Upstreams merely degraded (score 30, no isolation): still ISOLATED.
        let degraded = Signals {
            queries: 1000,
            upstream_queries: 100,
            upstream_failures: 40,
            ..Signals::default()
        };
        assert!(run(&mut fsm, t0, 1, 100, degraded).is_empty());
        run(&mut fsm, t0, 100, 701, calm());
        assert_eq!(fsm.mode(), Mode::Recovery);
        run(&mut fsm, t0, 701, 702, noisy());
        assert_eq!(fsm.mode(), Mode::Suspicious);
        let t = run(&mut fsm, t0, 702, 800, calm());
        assert_eq!(
            t,
            vec![(
                762,
                Transition {
                    from: Mode::Suspicious,
                    to: Mode::Normal
                }
            )]
        );
    }

    #[test]
    fn disabled_pins_normal() {
        let mut fsm = AttackFsm::new(AttackConfig {
            enabled: false,
            ..AttackConfig::default()
        });
        assert_eq!(fsm.tick(Instant::now(), &flood()), None);
        assert_eq!(fsm.mode(), Mode::Normal);
    }
}
