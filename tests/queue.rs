//! The queue against a real redis-server: the reference design's queue defects must not
//! appear here (retries that never dead-letter, trimming unacknowledged entries).

mod support;

use std::time::Duration;

use blueplane::event::{Event, Platform, Source};
use blueplane::queue::{self, Queue};
use support::redis::TestRedis;

fn event(i: usize) -> Event {
    Event {
        id: format!("cc:test:{i}"),
        platform: Platform::ClaudeCode,
        kind: "user".into(),
        session_id: Some("s".into()),
        timestamp_ms: Some(1_767_225_600_000 + i as i64),
        source: Source::FileLine {
            path: "/t.jsonl".into(),
            offset: i as u64,
        },
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

/// Publishes one event and makes it look delivered more than MAX_DELIVERIES times to a
/// consumer that died; returns its stream id.
async fn over_delivered(q: &Queue, r: &TestRedis, e: Event) -> String {
    q.publish(&[e], &[], None).await.expect("publish");
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
    id
}

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

fn dlq_text(r: &TestRedis) -> String {
    let dlq =
        support::redis::command(&r.socket, &["XRANGE", queue::DLQ, "-", "+"]).expect("xrange");
    let mut text = String::new();
    flat(&dlq, &mut text);
    text
}

fn raw_rows(db: &std::path::Path) -> i64 {
    let c = rusqlite::Connection::open(db).expect("db");
    c.query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
        .expect("count")
}

/// Deliveries alone never condemn an entry: one redelivered many times (its consumers kept
/// dying, or the store was down) is stored once the store is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_entry_delivered_many_times_is_stored_not_dead_lettered() {
    let r = TestRedis::start();
    let home = tempfile::tempdir().expect("home");
    let q = Queue::connect(&r.url()).await.expect("connect");
    over_delivered(&q, &r, event(1)).await;
    let mut fp =
        blueplane::fast_path::FastPath::new(q.clone(), &home.path().join("t.db"), "fp".into())
            .await
            .expect("fast path");
    tokio::time::sleep(blueplane::fast_path::CLAIM_IDLE + Duration::from_millis(200)).await;
    fp.reclaim().await.expect("reclaim");
    assert_eq!(q.dlq_len().await.expect("dlq"), 0, "not dead-lettered");
    assert_eq!(raw_rows(&home.path().join("t.db")), 1, "stored");
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.pending, 0, "acknowledged");
}

/// A poison entry — a consumer died while storing it alone — goes to the dead-letter stream
/// instead of killing consumers forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_a_consumer_died_storing_is_dead_lettered() {
    let r = TestRedis::start();
    let home = tempfile::tempdir().expect("home");
    let q = Queue::connect(&r.url()).await.expect("connect");
    let id = over_delivered(&q, &r, event(1)).await;
    // The marker a consumer sets before storing a suspect alone, left by one that died.
    support::redis::command(&r.socket, &["SADD", blueplane::fast_path::SUSPECTS, &id])
        .expect("sadd");
    let mut fp =
        blueplane::fast_path::FastPath::new(q.clone(), &home.path().join("t.db"), "fp".into())
            .await
            .expect("fast path");
    tokio::time::sleep(blueplane::fast_path::CLAIM_IDLE + Duration::from_millis(200)).await;
    fp.reclaim().await.expect("reclaim");
    assert_eq!(q.dlq_len().await.expect("dlq"), 1, "dead-lettered");
    assert_eq!(raw_rows(&home.path().join("t.db")), 0);
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.pending, 0, "acknowledged once dead-lettered");
    let text = dlq_text(&r);
    assert!(
        text.contains("died storing it") && text.contains("orig_id"),
        "{text}"
    );
}

/// A real per-entry failure on a healthy store (here a trigger rejects one event): the batch
/// is split, the other events are stored, only the rejected one is dead-lettered with the
/// store's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_store_rejects_is_found_in_its_batch_and_dead_lettered() {
    let r = TestRedis::start();
    let home = tempfile::tempdir().expect("home");
    let db = home.path().join("t.db");
    drop(blueplane::store::open_writer(&db).expect("create db"));
    rusqlite::Connection::open(&db)
        .expect("db")
        .execute_batch(&format!(
            "CREATE TRIGGER poison BEFORE INSERT ON raw_traces WHEN NEW.id_key = x'{}'
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
            blueplane::store::raw::id_key("cc:test:7")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ))
        .expect("trigger");
    let q = Queue::connect(&r.url()).await.expect("connect");
    let events: Vec<Event> = (0..20).map(event).collect();
    q.publish(&events, &[], None).await.expect("publish");
    let mut fp = blueplane::fast_path::FastPath::new(q.clone(), &db, "fp".into())
        .await
        .expect("fast path");
    let n = fp.step().await.expect("step");
    assert_eq!(n, 20);
    assert_eq!(raw_rows(&db), 19, "every other event stored");
    assert_eq!(q.dlq_len().await.expect("dlq"), 1);
    assert_eq!(fp.held(), 0, "a rejected entry is not an outage");
    let text = dlq_text(&r);
    assert!(
        text.contains("poisoned row") && text.contains("cc:test:7"),
        "{text}"
    );
    let info = q
        .group_info(queue::EVENTS, queue::FAST_GROUP)
        .await
        .expect("info");
    assert_eq!(info.pending, 0);
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
