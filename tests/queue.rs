//! The queue against a real redis-server: the reference design's queue defects must not
//! appear here (retries that never dead-letter, trimming unacknowledged entries).

mod support;

use std::time::Duration;

use blueplane::event::{Event, Platform};
use blueplane::queue::{self, Queue};
use support::redis::TestRedis;

fn event(i: usize) -> Event {
    Event {
        id: format!("cc:test:{i}"),
        platform: Platform::ClaudeCode,
        kind: "user".into(),
        session_id: Some("s".into()),
        timestamp_ms: Some(1_767_225_600_000 + i as i64),
        source: "/t.jsonl".into(),
        offset: i as u64,
        payload: format!("{{\"type\":\"user\",\"n\":{i}}}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_keeps_every_unacknowledged_entry() {
    let r = TestRedis::start();
    let q = Queue::connect(&r.url()).await.expect("connect");
    let events: Vec<Event> = (0..10).map(event).collect();
    q.publish(&events, &[], None).await.expect("publish");
    let reader = q
        .blocking(Duration::from_millis(100))
        .await
        .expect("reader");
    let got = reader
        .read_group(
            queue::EVENTS,
            queue::FAST_GROUP,
            "c1",
            6,
            Duration::from_millis(100),
        )
        .await
        .expect("read");
    assert_eq!(got.len(), 6);
    // Acknowledge 0..3 and 4..6; entry 3 stays pending, 6..10 are undelivered.
    let ack: Vec<String> = got
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, e)| e.stream_id.clone())
        .collect();
    q.ack(queue::EVENTS, queue::FAST_GROUP, &ack, None)
        .await
        .expect("ack");
    let trimmed = q
        .trim_acknowledged(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("trim");
    assert_eq!(
        trimmed, 3,
        "only the entries before the oldest pending one go"
    );
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!((info.length, info.pending, info.lag), (7, 1, Some(4)));
    // The pending entry can still be claimed and processed.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claimed = q
        .autoclaim(
            queue::EVENTS,
            queue::FAST_GROUP,
            "c2",
            Duration::from_millis(10),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].0.stream_id, got[3].stream_id);
    assert_eq!(claimed[0].1, 2, "delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_never_stores_is_dead_lettered_after_max_deliveries() {
    let r = TestRedis::start();
    let home = tempfile::tempdir().expect("home");
    let q = Queue::connect(&r.url()).await.expect("connect");
    q.publish(&[event(1)], &[], None).await.expect("publish");
    // A consumer that keeps failing: the entry is delivered and never acknowledged, again
    // and again (each XCLAIM counts as a delivery).
    let reader = q
        .blocking(Duration::from_millis(100))
        .await
        .expect("reader");
    let got = reader
        .read_group(
            queue::EVENTS,
            queue::FAST_GROUP,
            "dying",
            1,
            Duration::from_millis(100),
        )
        .await
        .expect("read");
    assert_eq!(got.len(), 1);
    let id = got[0].stream_id.clone();
    for _ in 0..blueplane::fast_path::MAX_DELIVERIES {
        support::redis::command(
            &r.socket,
            &[
                "XCLAIM",
                queue::EVENTS,
                queue::FAST_GROUP,
                "dying",
                "0",
                &id,
            ],
        )
        .expect("xclaim");
    }
    let mut fp =
        blueplane::fast_path::FastPath::new(q.clone(), &home.path().join("t.db"), "fp".into())
            .await
            .expect("fast path");
    tokio::time::sleep(blueplane::fast_path::CLAIM_IDLE + Duration::from_millis(200)).await;
    fp.reclaim().await.expect("reclaim");
    assert_eq!(
        q.dlq_len().await.expect("dlq"),
        1,
        "dead-lettered, not retried forever"
    );
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.pending, 0, "acknowledged once dead-lettered");
    let c = rusqlite::Connection::open(home.path().join("t.db")).expect("db");
    let n: i64 = c
        .query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
    // The dead letter says why and keeps the original fields.
    let dlq =
        support::redis::command(&r.socket, &["XRANGE", queue::DLQ, "-", "+"]).expect("xrange");
    fn flat(r: &support::redis::Resp, out: &mut String) {
        match r {
            support::redis::Resp::Bulk(Some(b)) => {
                out.push_str(&String::from_utf8_lossy(b));
                out.push(' ');
            }
            support::redis::Resp::Array(Some(items)) => items.iter().for_each(|i| flat(i, out)),
            _ => {}
        }
    }
    let mut text = String::new();
    flat(&dlq, &mut text);
    assert!(
        text.contains("deliveries") && text.contains("orig_id"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_entry_is_dead_lettered_at_once_and_the_batch_goes_on() {
    let r = TestRedis::start();
    let home = tempfile::tempdir().expect("home");
    let q = Queue::connect(&r.url()).await.expect("connect");
    support::redis::command(
        &r.socket,
        &["XADD", queue::EVENTS, "*", "id", "x", "p", "vim"],
    )
    .expect("xadd");
    q.publish(&[event(1), event(2)], &[], None)
        .await
        .expect("publish");
    let mut fp =
        blueplane::fast_path::FastPath::new(q.clone(), &home.path().join("t.db"), "fp".into())
            .await
            .expect("fast path");
    let n = fp.step().await.expect("step");
    assert_eq!(n, 3);
    assert_eq!(q.dlq_len().await.expect("dlq"), 1);
    let c = rusqlite::Connection::open(home.path().join("t.db")).expect("db");
    let stored: i64 = c
        .query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored, 2);
    assert_eq!(
        q.group_info(queue::EVENTS, queue::FAST_GROUP)
            .await
            .expect("info")
            .pending,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_entries_are_seen_even_when_redis_cannot_count_the_lag() {
    let r = TestRedis::start();
    let q = Queue::connect(&r.url()).await.expect("connect");
    q.publish(&[event(1), event(2), event(3)], &[], None)
        .await
        .expect("publish");
    // Deleting an undelivered entry makes Redis report the group's lag as unknown.
    let ids =
        support::redis::command(&r.socket, &["XRANGE", queue::EVENTS, "-", "+"]).expect("xrange");
    let second = match ids {
        support::redis::Resp::Array(Some(items)) => match &items[1] {
            support::redis::Resp::Array(Some(e)) => match &e[0] {
                support::redis::Resp::Bulk(Some(id)) => String::from_utf8(id.clone()).expect("id"),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    support::redis::command(&r.socket, &["XDEL", queue::EVENTS, &second]).expect("xdel");
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.lag, Some(1), "undelivered entries remain");
    let reader = q
        .blocking(Duration::from_millis(100))
        .await
        .expect("reader");
    let got = reader
        .read_group(
            queue::EVENTS,
            queue::FAST_GROUP,
            "c",
            10,
            Duration::from_millis(100),
        )
        .await
        .expect("read");
    assert_eq!(got.len(), 2);
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.lag, Some(0), "everything delivered");
}
