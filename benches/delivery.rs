//! Tracking requests delivered per second from the outbox of a real sled store: to the JSONL
//! sink (goal: 10,000/s) and to a webhook receiver on loopback (goal: 2,000/s). Each round fills
//! the outbox with 2,048 requests (not timed), then drains it: sink calls, fsyncs, and the
//! store transactions that take the entries out.
//!
//! `cargo bench --bench delivery`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use foldertrack::config::Config;
use foldertrack::deliver::{AnySink, Deliverer};
use foldertrack::feed::ItemRef;
use foldertrack::store::{SledStore, Store};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

#[path = "support/mod.rs"]
mod support;

const ROUND: usize = 2_048;
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Puts `ROUND` new tracking requests into the outbox.
fn fill(rt: &tokio::runtime::Runtime, store: &SledStore) {
    for _ in 0..ROUND / 512 {
        let first = NEXT.fetch_add(512, Ordering::Relaxed);
        let arrived = (first..first + 512)
            .map(|n| {
                let item = ItemRef::new(support::item_id(n), None);
                support::fetched(&item, n)
            })
            .collect();
        let page = support::page(first, arrived);
        rt.block_on(store.commit_page(page)).unwrap();
    }
}

fn config(dir: &Path, sink: &str) -> Config {
    let text = format!(
        "[exchange]\nurl = \"http://127.0.0.1:1/EWS/Exchange.asmx\"\nauth = {{ kind = \"basic\", username = \"svc\", password_file = \"{pw}\" }}\n[writeback]\nenabled = false\n{sink}",
        pw = dir.join("pw").display()
    );
    std::fs::write(dir.join("pw"), "x").unwrap();
    Config::from_toml_str(&text, &dir.join("foldertrack.toml")).unwrap()
}

/// A webhook receiver on loopback that accepts everything.
async fn receiver() -> String {
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Elements(ROUND as u64));
    group.sample_size(10);

    let dir = tempfile::tempdir().unwrap();
    let jsonl = format!(
        "[sink]\nkind = \"jsonl\"\npath = \"{}\"\n",
        dir.path().join("out.jsonl").display()
    );
    let url = rt.block_on(receiver());
    std::fs::write(dir.path().join("hook.secret"), "secret").unwrap();
    let webhook = format!(
        "[sink]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\n",
        dir.path().join("hook.secret").display()
    );
    for (name, sink) in [("jsonl_2048", jsonl), ("webhook_2048", webhook)] {
        let store = SledStore::open(&dir.path().join(name)).unwrap();
        let config = config(dir.path(), &sink);
        let deliverer = Deliverer::new(
            AnySink::open(config.sink_settings().unwrap()).unwrap(),
            &config.delivery_settings(),
        );
        group.bench_function(name, |b| {
            b.iter_batched(
                || fill(&rt, &store),
                |()| {
                    let drained = rt.block_on(deliverer.drain(&store)).unwrap();
                    assert_eq!(drained.delivered, ROUND);
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
