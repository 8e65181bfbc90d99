//! What `GET /metrics` shows besides the front-ends' request metrics: each table's size and
//! counters, the tables' load status, the process's resident memory and uptime, and a
//! replica's staleness. All read at scrape time, so they cost nothing between scrapes.

use std::sync::Arc;
use std::time::Instant;

use murr_http::{NodeStatus, Role};
use murr_table::{Store, TableCounters, TableStats, TableStatus};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The store and node, read at each scrape.
#[derive(Debug)]
pub(crate) struct StoreCollector {
    pub(crate) store: Arc<Store>,
    pub(crate) node: Arc<NodeStatus>,
    pub(crate) started: Instant,
}

type Row = (String, TableStats, TableCounters);

/// A gauge per table.
fn per_table_gauge(
    encoder: &mut DescriptorEncoder<'_>,
    rows: &[Row],
    name: &str,
    help: &str,
    value: impl Fn(&Row) -> i64,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for row in rows {
        ConstGauge::new(value(row)).encode(family.encode_family(&[("table", row.0.as_str())])?)?;
    }
    Ok(())
}

/// A counter per table.
fn per_table_counter<N: prometheus_client::encoding::EncodeCounterValue>(
    encoder: &mut DescriptorEncoder<'_>,
    rows: &[Row],
    name: &str,
    help: &str,
    value: impl Fn(&Row) -> N,
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for row in rows {
        ConstCounter::new(value(row))
            .encode(family.encode_family(&[("table", row.0.as_str())])?)?;
    }
    Ok(())
}

/// This process's resident memory, from `/proc/self/status` (None where there is no procfs).
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let listed = self.store.tables();
        let failed = listed
            .iter()
            .filter(|(_, s)| *s != TableStatus::Ready)
            .count();
        let mut rows: Vec<Row> = listed
            .iter()
            .filter(|(_, s)| *s == TableStatus::Ready)
            .filter_map(|(name, _)| self.store.table(name).ok())
            .map(|t| (t.name().to_owned(), t.stats(), t.counters()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let mut tables = encoder.encode_descriptor(
            "murr_tables",
            "Tables by load status (failed: their files did not load; they answer 503)",
            None,
            MetricType::Gauge,
        )?;
        for (status, n) in [("ready", rows.len()), ("failed", failed)] {
            ConstGauge::new(n as i64).encode(tables.encode_family(&[("status", status)])?)?;
        }
        per_table_gauge(
            &mut encoder,
            &rows,
            "murr_table_rows",
            "Rows stored, counting rows a later write shadows until a merge drops them",
            |r| r.1.rows as i64,
        )?;
        per_table_gauge(
            &mut encoder,
            &rows,
            "murr_table_segments",
            "Live segment files",
            |r| r.1.segments as i64,
        )?;
        per_table_gauge(
            &mut encoder,
            &rows,
            "murr_table_bytes",
            "Bytes of the live segment files",
            |r| r.1.bytes as i64,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_fetches",
            "Fetches answered",
            |r| r.2.fetches,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_fetch_keys",
            "Keys asked for by fetches",
            |r| r.2.keys,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_fetch_keys_found",
            "Keys found by fetches (neither never written nor expired)",
            |r| r.2.found,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_writes",
            "Writes committed",
            |r| r.2.writes,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_rows_written",
            "Rows in committed writes",
            |r| r.2.rows_written,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_merges",
            "Merges committed",
            |r| r.2.merges,
        )?;
        per_table_counter(
            &mut encoder,
            &rows,
            "murr_merge_seconds",
            "Time spent in committed merges",
            |r| r.2.merge_micros as f64 / 1e6,
        )?;
        if let Some(rss) = resident_bytes() {
            ConstGauge::new(rss).encode(encoder.encode_descriptor(
                "murr_process_resident_memory_bytes",
                "Resident memory of the murr process (heap and mapped segment pages)",
                None,
                MetricType::Gauge,
            )?)?;
        }
        ConstGauge::new(self.started.elapsed().as_secs_f64()).encode(
            encoder.encode_descriptor(
                "murr_uptime_seconds",
                "Seconds since the server started",
                None,
                MetricType::Gauge,
            )?,
        )?;
        if self.node.role() == Role::Replica {
            let report = self.node.report();
            if let Some(age) = report.last_sync_age_seconds {
                ConstGauge::new(age).encode(encoder.encode_descriptor(
                    "murr_replica_sync_age_seconds",
                    "Seconds since this replica last read the store's state",
                    None,
                    MetricType::Gauge,
                )?)?;
            }
            ConstGauge::new(i64::from(report.stale == Some(true))).encode(
                encoder.encode_descriptor(
                    "murr_replica_stale",
                    "1 while this replica's copy is older than its staleness bound",
                    None,
                    MetricType::Gauge,
                )?,
            )?;
        }
        Ok(())
    }
}
