//! Arbitrary bytes through the edge's synchronous query decision (`Engine::handle`) and the
//! bookkeeping after an answer (`Engine::complete`): admission, parsing, ANY, cache hits,
//! FORMERR/NOTIMP, or a forward. Must never panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tolldns_cache::{Cache, CacheConfig, CacheKey};
use tolldns_core::NameKey;
use tolldns_ingress::{
    AdmissionConfig, ChannelSink, Credential, Engine, EngineConfig, MAX_MESSAGE, Metrics,
    ReceiptsConfig, ReceiptsSetup, Recorder, Request, StaticNameKey, Step,
};
use tolldns_receipts::Transport;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let cache = Arc::new(Cache::new(CacheConfig::default()));
        // A cached answer for `a.test. A`, so the hit path is reachable.
        let mut answer = vec![0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        answer.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
        answer.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 192, 0, 2, 1]);
        let key = CacheKey::new(b"\x01a\x04test\x00", 1, 1, false, false);
        let _ = cache.insert(&key, &answer, Instant::now());
        let (sink, rx) = ChannelSink::new(1);
        std::mem::forget(rx);
        let recorder = Recorder::new(
            &ReceiptsConfig {
                max_pending_leaves: 10_000,
                ..ReceiptsConfig::default()
            },
            ReceiptsSetup {
                signing_key: ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
                name_keys: Arc::new(StaticNameKey(NameKey([2; 32]))),
                sink: Arc::new(sink),
            },
            2,
        )
        .expect("valid receipts config");
        Engine::new(
            EngineConfig {
                admission: AdmissionConfig {
                    rate_per_prefix: 1_000_000,
                    burst_per_prefix: 1_000_000,
                    ..AdmissionConfig::default()
                },
                ..EngineConfig::default()
            },
            cache,
            Metrics::unregistered(),
            Some(Arc::new(recorder)),
            Instant::now(),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, query)) = data.split_first() else {
        return;
    };
    let transport = match selector & 3 {
        0 => Transport::Udp,
        1 => Transport::Tcp,
        2 => Transport::Dot,
        _ => Transport::Doh,
    };
    let e = engine();
    let now = Instant::now();
    let req = Request {
        transport,
        source: IpAddr::V4(Ipv4Addr::new(10, 0, selector, 1)),
        query,
        credential: if selector & 4 != 0 {
            Credential::Session([selector; 16])
        } else {
            Credential::None
        },
        received: now,
    };
    let mut out = vec![0u8; MAX_MESSAGE];
    match e.handle(&req, now, &mut out) {
        Step::Respond(reply) => {
            assert!(reply.len <= out.len());
            assert!(reply.len >= 12);
            e.complete(&req, &reply, &out[..reply.len]);
        }
        Step::Drop | Step::Forward(_) => {}
    }
    if selector == 0xFF {
        let _ = e.tick(now);
    }
});
