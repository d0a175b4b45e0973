//! The memory knob: N KB kept per chat request, never released. RSS (from
//! /proc) and health's memory.heapUsed grow by about N KB per request.

use super::*;
use chatops::probe::process::rss_bytes;

const REQUESTS: u64 = 32;
const RETAIN_KB: u64 = 1024;

/// health's memory.heapUsed and memory.heapTotal.
async fn heap(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let v: serde_json::Value = http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health JSON");
    let n = |k: &str| {
        v["memory"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("no memory.{k} in {v}"))
    };
    (n("heapUsed"), n("heapTotal"))
}

/// (RSS growth, heapUsed growth, heapUsed/heapTotal after) over the sends.
async fn growth(http: &reqwest::Client, base: &str, pid: u32) -> (i64, i64, f64) {
    send(http, base, "warm-up").await;
    let rss0 = rss_bytes(pid).expect("rss");
    let (used0, _) = heap(http, base).await;
    for i in 0..REQUESTS {
        let (status, body) = send(http, base, &format!("leak {i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let rss1 = rss_bytes(pid).expect("rss");
    let (used1, total1) = heap(http, base).await;
    (
        rss1 as i64 - rss0 as i64,
        used1 as i64 - used0 as i64,
        used1 as f64 / total1 as f64,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_memory_grows_rss_and_heap_used() {
    let mut sb = sandbox(PgOptions::default()).await;
    let http = reqwest::Client::new();
    let expected = (REQUESTS * RETAIN_KB * 1024) as i64;

    let (base, pid, _) = start(&mut sb, Knobs::default()).await;
    let (rss_h, used_h, ratio_h) = growth(&http, &base, pid).await;
    assert!(
        used_h < expected / 4,
        "healthy: heapUsed grew {used_h} bytes"
    );
    assert!(ratio_h < 0.8, "healthy heap ratio {ratio_h:.2}");

    let (base, pid, _) = start(
        &mut sb,
        Knobs {
            retain_kb: Some(RETAIN_KB),
            ..Knobs::default()
        },
    )
    .await;
    let (rss, used, ratio) = growth(&http, &base, pid).await;
    assert!(
        rss >= expected * 9 / 10,
        "RSS grew {rss} bytes over {REQUESTS} requests keeping {RETAIN_KB} KB each (healthy: {rss_h})"
    );
    assert!(
        used >= expected * 95 / 100 && used <= expected * 2,
        "heapUsed grew {used} bytes, expected about {expected}"
    );
    assert!(
        ratio > 0.8,
        "with {} MB kept heapUsed passes 80% of heapTotal (the seed's alert): {ratio:.2}",
        expected >> 20
    );
}
