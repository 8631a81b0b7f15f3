//! The upstream miss path's sans-IO work: writing the query and checking the response against
//! the question asked.
//!
//! Run: `cargo bench -p tolldns-ingress --bench upstream_wire`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tolldns_ingress::upstream::{Question, build_query, check_response};

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// A NOERROR response with ID 7 to `qname`/A: a CNAME chain through `aliases`, then one A
/// record, and an OPT record, as a resolver writes it (names compressed).
fn response(qname: &str, aliases: &[&str]) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(7)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_recursion_available(true);
    m.add_query(Query::query(name(qname), RecordType::A));
    let mut owner = name(qname);
    for alias in aliases {
        let target = name(alias);
        m.add_answer(Record::from_rdata(
            owner,
            300,
            RData::CNAME(CNAME(target.clone())),
        ));
        owner = target;
    }
    m.add_answer(Record::from_rdata(
        owner,
        300,
        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m.to_vec().unwrap_or_else(|e| panic!("encode: {e}"))
}

fn bench(c: &mut Criterion) {
    let q = Question::new(name("www.example.com."), RecordType::A);
    let plain = response("www.example.com.", &[]);
    let chain = response(
        "www.example.com.",
        &["www.example.com.cdn.example.net.", "edge7.cdn.example.net."],
    );
    c.bench_function("build_query", |b| {
        b.iter(|| black_box(build_query(black_box(&q), 7, 1232)));
    });
    for (label, wire) in [("a_1_record", &plain), ("cname_chain_2", &chain)] {
        assert!(check_response(wire, 7, &q, false).is_ok(), "{label}");
        c.bench_function(&format!("check_response/{label}"), |b| {
            b.iter(|| check_response(black_box(wire), 7, black_box(&q), false).is_ok());
        });
        // What a full hickory-proto parse alone costs on the same answer (the floor of a check
        // built on one).
        c.bench_function(&format!("hickory_from_vec/{label}"), |b| {
            b.iter(|| Message::from_vec(black_box(wire)).is_ok());
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
