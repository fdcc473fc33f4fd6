//! What the document cache saves inside the server, measured apart from the
//! rest of a request: `schema.execute` of the benchmark's Q1 and Q2 with the
//! cache off and on, and the HTTP layer's writer decision (which reads the
//! same cache). Run without a request context, every root field stops at
//! once, so what is timed is parsing, validating and starting execution.
//! `cargo bench --bench documents`; `benches/documents.sh` runs it too.

use std::{sync::Arc, time::Instant};

use aggios::graphql::{SchemaOptions, document_cache::DocumentCache, serving_schema};

const Q1: &str = "{ clients(first: 10) { edges { node { id name email } } } }";
const Q2: &str = "{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }";
const ITERATIONS: u32 = 20_000;

fn per_op_us(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERATIONS / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS)
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    println!("| query | execute, cache off | execute, cache on | writer decision, off | writer decision, on | saved per request |");
    println!("|---|---|---|---|---|---|");
    for (name, query) in [("Q1", Q1), ("Q2", Q2)] {
        let mut row = Vec::new();
        for bytes in [0, 4 << 20] {
            let cache = Arc::new(DocumentCache::new(bytes, 64 << 10));
            let schema = serving_schema(SchemaOptions { production: true, limits: aggios::config::LimitsSettings::default() }, cache.clone());
            let execute = per_op_us(|| {
                let resp = rt.block_on(schema.execute(query));
                assert!(resp.errors.iter().all(|e| !e.message.contains("syntax")), "{:?}", resp.errors);
            });
            let decide = per_op_us(|| {
                std::hint::black_box(aggios::graphql::shape::operation_type(query, None, 1000));
            });
            row.push((execute, decide));
        }
        let [(off, decide_off), (on, decide_on)] = row[..] else { anyhow::bail!("two runs") };
        let saved = (off + decide_off) - (on + decide_on);
        println!("| {name} | {off:.1} µs | {on:.1} µs | {decide_off:.1} µs | {decide_on:.1} µs | {saved:.1} µs |");
    }
    Ok(())
}
