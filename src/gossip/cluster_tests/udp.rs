//! Gossip over real UDP on 127.0.0.1 ports: the cluster key keeps other keys and unkeyed nodes
//! out, garbage and crafted datagrams harm nothing, a seed given by name is found once its
//! node comes up. Real time; every wait has a deadline.

use std::net::SocketAddr;
use std::time::Duration;

use chitchat::{ChitchatEnvelope, ChitchatId, Serializable};
use tokio::net::UdpSocket;

use super::{DEADLINE, dead_ids, info, live_ids, settings, wait_all_live, wait_for};
use crate::gossip::{ClusterKey, GossipHandle, GossipStats};

const ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

async fn start(node_id: i32, seeds: &[SocketAddr], key: Option<&[u8]>) -> GossipHandle {
    let mut settings = settings(node_id, 1, ANY_PORT, seeds);
    settings.cluster_key = key.map(|k| ClusterKey::new(k.to_vec()).unwrap());
    GossipHandle::start(settings, info(node_id)).await.unwrap()
}

/// Polls `node`'s counters until `condition` holds.
async fn wait_for_stats(node: &GossipHandle, what: &str, condition: impl Fn(&GossipStats) -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition(&node.stats()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {}: no {what} within {DEADLINE:?}: {:?}",
            node.node_id(),
            node.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const KEY: &[u8] = b"a 32-byte cluster key for tests!";
const OTHER_KEY: &[u8] = b"another 32-byte key, same length";

#[tokio::test]
async fn a_node_with_another_cluster_key_or_none_is_never_seen() {
    let a = start(1, &[], Some(KEY)).await;
    let b = start(2, &[a.gossip_addr()], Some(KEY)).await;
    wait_all_live(&[&a, &b], &[1, 2]).await;

    let wrong_key = start(3, &[a.gossip_addr()], Some(OTHER_KEY)).await;
    wait_for_stats(&a, "datagrams with another key", |s| {
        s.datagrams_unauthenticated >= 3
    })
    .await;
    assert_eq!(live_ids(&wrong_key.membership().borrow()), [3].into());
    assert_eq!(wrong_key.stats().datagrams_accepted, 0, "nobody answered");
    assert_eq!(wrong_key.chitchat_nodes().await.len(), 1);
    wrong_key.shutdown().await.unwrap();

    let dropped_before = a.stats().datagrams_unauthenticated;
    let unkeyed = start(4, &[a.gossip_addr()], None).await;
    wait_for_stats(&a, "datagrams without a key", |s| {
        s.datagrams_unauthenticated >= dropped_before + 5
    })
    .await;
    assert_eq!(live_ids(&unkeyed.membership().borrow()), [4].into());
    assert_eq!(unkeyed.stats().datagrams_accepted, 0, "nobody answered");
    assert_eq!(unkeyed.chitchat_nodes().await.len(), 1);

    for node in [&a, &b] {
        let view = node.membership().borrow().clone();
        let reported = live_ids(&view).into_iter().chain(dead_ids(&view));
        assert!(
            reported.into_iter().all(|id| id == 1 || id == 2),
            "{view:?}"
        );
        let known = node.chitchat_nodes().await;
        assert!(
            !known.iter().any(|(id, _, _)| id == "3" || id == "4"),
            "{known:?}"
        );
    }
    assert_eq!(a.stats().datagrams_malformed, 0);
}

/// A chitchat ACK whose delta for `target` carries a key-value at `kv_version` and then sets the
/// node's max version to `max_version`, built byte by byte (chitchat builds no such delta).
fn crafted_ack(target: &ChitchatId, kv_version: u64, max_version: u64) -> Vec<u8> {
    let mut ops = vec![0u8]; // node operation
    target.serialize(&mut ops);
    0u64.serialize(&mut ops); // last gc version
    0u64.serialize(&mut ops); // from version (excluded)
    ops.push(1); // key-value operation
    "crafted".serialize(&mut ops);
    "value".serialize(&mut ops);
    kv_version.serialize(&mut ops);
    ops.push(0); // set, not deleted
    ops.push(2); // set-max-version operation
    max_version.serialize(&mut ops);

    let mut datagram = 45_139u16.to_le_bytes().to_vec(); // chitchat's magic number
    datagram.extend([0, 2]); // protocol version 0, ACK
    datagram.push(2); // uncompressed block
    datagram.extend(u16::try_from(ops.len()).unwrap().to_le_bytes());
    datagram.extend(ops);
    datagram.push(0); // no more blocks
    datagram
}

fn chitchat_id(node: &GossipHandle) -> ChitchatId {
    ChitchatId::new(
        node.node_id().to_string(),
        node.generation(),
        node.gossip_addr(),
    )
}

/// Regression: chitchat 0.13 accepted this delta and then failed an `assert!` applying it,
/// which ended the gossip task of the receiving node (vendor/chitchat/TIDELOG-PATCH.md).
#[tokio::test]
async fn a_crafted_delta_below_its_own_versions_does_not_stop_gossip() {
    let a = start(1, &[], None).await;
    let honest = crafted_ack(&chitchat_id(&a), 5, 5);
    assert!(
        ChitchatEnvelope::deserialize(&mut &honest[..]).is_ok(),
        "the framing is right"
    );
    let crafted = crafted_ack(&chitchat_id(&a), 1_000, 500);
    assert!(ChitchatEnvelope::deserialize(&mut &crafted[..]).is_err());

    let attacker = UdpSocket::bind(ANY_PORT).await.unwrap();
    attacker.send_to(&crafted, a.gossip_addr()).await.unwrap();
    wait_for_stats(&a, "the crafted datagram dropped", |s| {
        s.datagrams_malformed >= 1
    })
    .await;

    let b = start(2, &[a.gossip_addr()], None).await;
    wait_all_live(&[&a, &b], &[1, 2]).await;
}

/// Deterministic bytes that look random.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state.to_be_bytes()[0]
        })
        .collect()
}

fn garbage() -> Vec<Vec<u8>> {
    let mut chitchat_header = 45_139u16.to_le_bytes().to_vec();
    chitchat_header.extend([0, 1]);
    let mut chitchat_junk = chitchat_header.clone();
    chitchat_junk.extend(noise(200, 3));
    vec![
        Vec::new(),
        vec![0],
        b"TLG1".to_vec(),
        noise(100, 1),
        noise(65_507, 2),
        chitchat_header,
        chitchat_junk,
        [b"TLG1".as_slice(), &noise(200, 4)].concat(),
    ]
}

#[tokio::test]
async fn garbage_datagrams_are_dropped_and_gossip_goes_on() {
    let plain = start(1, &[], None).await;
    let keyed = start(11, &[], Some(KEY)).await;
    let sender = UdpSocket::bind(ANY_PORT).await.unwrap();
    let datagrams = garbage();
    // One at a time, each counted before the next: no socket buffer ever overflows.
    for (sent, datagram) in (1u64..).zip(&datagrams) {
        sender.send_to(datagram, plain.gossip_addr()).await.unwrap();
        sender.send_to(datagram, keyed.gossip_addr()).await.unwrap();
        wait_for_stats(&plain, "the garbage datagram dropped", |s| {
            s.datagrams_malformed == sent
        })
        .await;
        wait_for_stats(&keyed, "the garbage datagram dropped", |s| {
            s.datagrams_unauthenticated == sent
        })
        .await;
    }
    assert_eq!(plain.stats().datagrams_accepted, 0);
    assert_eq!(keyed.stats().datagrams_accepted, 0);

    let plain_peer = start(2, &[plain.gossip_addr()], None).await;
    let keyed_peer = start(12, &[keyed.gossip_addr()], Some(KEY)).await;
    wait_all_live(&[&plain, &plain_peer], &[1, 2]).await;
    wait_all_live(&[&keyed, &keyed_peer], &[11, 12]).await;
}

#[tokio::test]
async fn a_seed_given_by_name_is_found_once_its_node_comes_up() {
    // Hold the port the seed names, so the seeded node gossips to it before its node exists.
    let placeholder = UdpSocket::bind(ANY_PORT).await.unwrap();
    let port = placeholder.local_addr().unwrap().port();
    let mut seeded_settings = settings(2, 1, ANY_PORT, &[]);
    seeded_settings.seeds = vec![format!("localhost:{port}")];
    let seeded = GossipHandle::start(seeded_settings, info(2)).await.unwrap();

    let mut buf = vec![0; 65_536];
    let (_, from) = tokio::time::timeout(DEADLINE, placeholder.recv_from(&mut buf))
        .await
        .expect("the seeded node gossips to the named seed")
        .unwrap();
    assert_eq!(from, seeded.gossip_addr());
    drop(placeholder);

    let named = GossipHandle::start(
        settings(1, 1, SocketAddr::from(([127, 0, 0, 1], port)), &[]),
        info(1),
    )
    .await
    .unwrap();
    wait_all_live(&[&named, &seeded], &[1, 2]).await;
    wait_for(&named, "node 2's info", |v| v.live_claims(2).count() == 1).await;
}
