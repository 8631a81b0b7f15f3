//! hickory's client over UDP, TCP, DoT and DoH.

use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_client::client::{Client, ClientHandle};
use hickory_proto::h2::HttpsClientStreamBuilder;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::runtime::TokioRuntimeProvider;
use hickory_proto::rustls::tls_client_connect;
use hickory_proto::tcp::TcpClientStream;
use hickory_proto::udp::UdpClientStream;
use tolldns_testkit::TEST_SERVER_NAME;

use crate::common::harness;

async fn check_a(client: &mut Client) {
    let name = Name::from_ascii("a.test.").unwrap();
    let resp = client
        .query(name, DNSClass::IN, RecordType::A)
        .await
        .expect("query");
    assert_eq!(resp.response_code(), ResponseCode::NoError);
    let ips: Vec<Ipv4Addr> = resp
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(ips, vec![Ipv4Addr::new(192, 0, 2, 1)]);
    let nx = client
        .query(
            Name::from_ascii("nope.test.").unwrap(),
            DNSClass::IN,
            RecordType::A,
        )
        .await
        .expect("query");
    assert_eq!(nx.response_code(), ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hickory_over_all_four_transports() {
    let h = harness(|_| {}).await;
    let provider = TokioRuntimeProvider::default();

    // UDP
    let stream = UdpClientStream::builder(h.udp(), provider.clone())
        .with_timeout(Some(Duration::from_secs(3)))
        .build();
    let (mut udp, bg) = Client::connect(stream).await.unwrap();
    tokio::spawn(bg);
    check_a(&mut udp).await;
    let after_udp = h.upstream().queries();

    // TCP: the answers now come from the cache.
    let (stream, sender) = TcpClientStream::new(
        h.tcp(),
        None,
        Some(Duration::from_secs(3)),
        provider.clone(),
    );
    let (mut tcp, bg) = Client::new(stream, sender, None).await.unwrap();
    tokio::spawn(bg);
    check_a(&mut tcp).await;
    assert_eq!(
        h.upstream().queries(),
        after_udp,
        "TCP answers served from the cache"
    );

    // DoT
    let tls = h.cert.client_config(&[]).unwrap();
    let (stream, sender) =
        tls_client_connect(h.dot(), TEST_SERVER_NAME.to_owned(), tls, provider.clone());
    let (mut dot, bg) = Client::new(stream, sender, None).await.unwrap();
    tokio::spawn(bg);
    check_a(&mut dot).await;

    // DoH (HTTP/2)
    let tls = h.cert.client_config(&[b"h2"]).unwrap();
    let stream = HttpsClientStreamBuilder::with_client_config(tls, provider.clone()).build(
        h.doh(),
        TEST_SERVER_NAME.to_owned(),
        "/dns-query".to_owned(),
    );
    let (mut doh, bg) = Client::connect(stream).await.unwrap();
    tokio::spawn(bg);
    check_a(&mut doh).await;

    // AAAA and CNAME chains go through too.
    let resp = doh
        .query(
            Name::from_ascii("www.test.").unwrap(),
            DNSClass::IN,
            RecordType::A,
        )
        .await
        .unwrap();
    assert_eq!(resp.answers().len(), 2);

    let leaves = h.edge.shutdown().await;
    assert_eq!(leaves, 9);
}
