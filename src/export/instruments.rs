//! The instruments, one per catalogue entry ([`Metric::ALL`]), and the engine's [`Recorder`]
//! implementation on top of them. Counters and histograms are recorded by the engine; gauges are
//! observed from the engine's latest [`GaugeSnapshot`](crate::engine::GaugeSnapshot) and self
//! counters from [`SelfStats`] at each collection. Must not interpret the values it carries.

use std::sync::Arc;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrument, BoundHistogram, Counter, Histogram, Meter};
use tokio::sync::watch;
use tracing::warn;

use super::logs::AlertEmitter;
use crate::alert::AlertTransition;
use crate::engine::{Recorder, SharedSnapshot};
use crate::metrics::{Kind, Metric, label};
use crate::stats::{ExporterKind, InputError, ReceiverTransport, RecordOutcome, SelfStats};

/// One instrument per catalogue entry, indexed by `Metric as usize` (the catalogue order).
pub struct Instruments {
    counters: Vec<Option<Counter<u64>>>,
    histograms: Vec<Option<Histogram<f64>>>,
    // Observable instruments keep their callbacks registered for the provider's lifetime; the
    // handles are held only so that stays true whatever a future SDK does on drop.
    _observable: Vec<Box<dyn std::any::Any + Send + Sync>>,
}

impl Instruments {
    /// Creates every catalogue instrument on `meter`, with unit, description and buckets.
    pub fn new(
        meter: &Meter,
        gauges: watch::Receiver<SharedSnapshot>,
        stats: Arc<SelfStats>,
    ) -> Instruments {
        let mut counters = Vec::with_capacity(Metric::ALL.len());
        let mut histograms = Vec::with_capacity(Metric::ALL.len());
        let mut observable: Vec<Box<dyn std::any::Any + Send + Sync>> = Vec::new();
        for &metric in Metric::ALL {
            let def = metric.def();
            let mut counter = None;
            let mut histogram = None;
            match def.kind {
                Kind::Counter => {
                    counter = Some(
                        meter
                            .u64_counter(def.name)
                            .with_unit(def.unit)
                            .with_description(def.description)
                            .build(),
                    );
                }
                Kind::Histogram => {
                    histogram = Some(
                        meter
                            .f64_histogram(def.name)
                            .with_unit(def.unit)
                            .with_description(def.description)
                            .with_boundaries(def.boundaries.to_vec())
                            .build(),
                    );
                }
                Kind::Gauge => {
                    let source = GaugeSource::for_metric(metric, &gauges, &stats);
                    observable.push(Box::new(
                        meter
                            .f64_observable_gauge(def.name)
                            .with_unit(def.unit)
                            .with_description(def.description)
                            .with_callback(move |obs| source.observe(obs))
                            .build(),
                    ));
                }
                Kind::ObservableCounter => {
                    let stats = stats.clone();
                    observable.push(Box::new(
                        meter
                            .u64_observable_counter(def.name)
                            .with_unit(def.unit)
                            .with_description(def.description)
                            .with_callback(move |obs| observe_self_counter(metric, &stats, obs))
                            .build(),
                    ));
                }
            }
            counters.push(counter);
            histograms.push(histogram);
        }
        Instruments {
            counters,
            histograms,
            _observable: observable,
        }
    }
}

/// Where an observable gauge reads its points.
enum GaugeSource {
    /// Every point of this metric in the engine's latest snapshot.
    Snapshot(Metric, watch::Receiver<SharedSnapshot>),
    /// `callpulse.engine.queue_depth`, set by the app in [`SelfStats`] (not in the snapshot).
    QueueDepth(Arc<SelfStats>),
    /// `callpulse.input.up`, set by the native inputs in [`SelfStats`].
    InputUp(Arc<SelfStats>),
}

impl GaugeSource {
    fn for_metric(
        metric: Metric,
        gauges: &watch::Receiver<SharedSnapshot>,
        stats: &Arc<SelfStats>,
    ) -> GaugeSource {
        match metric {
            Metric::EngineQueueDepth => GaugeSource::QueueDepth(stats.clone()),
            Metric::InputUp => GaugeSource::InputUp(stats.clone()),
            m => GaugeSource::Snapshot(m, gauges.clone()),
        }
    }

    fn observe(&self, obs: &dyn AsyncInstrument<f64>) {
        match self {
            GaugeSource::QueueDepth(stats) => obs.observe(stats.queue_depth() as f64, &[]),
            GaugeSource::InputUp(stats) => {
                for i in stats.inputs() {
                    obs.observe(
                        if i.up() { 1.0 } else { 0.0 },
                        &[
                            KeyValue::new(label::PBX, i.name.clone()),
                            KeyValue::new(label::INPUT, i.kind),
                        ],
                    );
                }
            }
            GaugeSource::Snapshot(metric, rx) => {
                // Clone the Arc and release the watch lock before building attributes.
                let snapshot = rx.borrow().clone();
                let mut attrs = Vec::new();
                for p in snapshot.points.iter().filter(|p| p.metric == *metric) {
                    // A ratio with no samples has no value; NaN would poison every dashboard.
                    if !p.value.is_finite() {
                        continue;
                    }
                    attrs.clear();
                    attrs.extend(p.labels.iter().map(|(k, v)| KeyValue::new(*k, v.clone())));
                    obs.observe(p.value, &attrs);
                }
            }
        }
    }
}

/// Observes one self-telemetry counter from the shared atomics.
fn observe_self_counter(metric: Metric, stats: &SelfStats, obs: &dyn AsyncInstrument<u64>) {
    match metric {
        Metric::ReceiverLogRecords => {
            for t in ReceiverTransport::ALL {
                for o in RecordOutcome::ALL {
                    obs.observe(
                        stats.records(t, o),
                        &[
                            KeyValue::new(label::RECEIVER_TRANSPORT, t.as_str()),
                            KeyValue::new(label::RECEIVER_OUTCOME, o.as_str()),
                        ],
                    );
                }
            }
        }
        Metric::ProbeRoundsSkipped | Metric::ProbeDatagramsDropped => {
            use std::sync::atomic::Ordering::Relaxed;
            let none = crate::probe::runner::ProbeCounters::default();
            let c = stats.probe_counters().unwrap_or(&none);
            let series: &[(&str, &std::sync::atomic::AtomicU64)] =
                if metric == Metric::ProbeRoundsSkipped {
                    &[
                        ("busy", &c.busy),
                        ("late", &c.late),
                        ("panicked", &c.panicked),
                    ]
                } else {
                    &[("stray", &c.stray), ("route_full", &c.route_full)]
                };
            for (reason, n) in series {
                obs.observe(n.load(Relaxed), &[KeyValue::new(label::REASON, *reason)]);
            }
        }
        Metric::ReceiverRequestsRefused => {
            // Zeros before the receivers start, so the series exist from the first scrape.
            let none = crate::receiver::Refusals::default();
            let refusals = stats.refusals().unwrap_or(&none);
            for t in ReceiverTransport::ALL {
                for r in crate::receiver::RefusalReason::ALL {
                    obs.observe(
                        refusals.get(t, r),
                        &[
                            KeyValue::new(label::RECEIVER_TRANSPORT, t.as_str()),
                            KeyValue::new(label::REASON, r.as_str()),
                        ],
                    );
                }
            }
        }
        Metric::ExportFailures => {
            for e in ExporterKind::ALL {
                obs.observe(
                    stats.export_failures(e),
                    &[KeyValue::new(label::EXPORTER, e.as_str())],
                );
            }
        }
        Metric::InputEvents => {
            for i in stats.inputs() {
                for o in [
                    RecordOutcome::Accepted,
                    RecordOutcome::Invalid,
                    RecordOutcome::Ignored,
                ] {
                    obs.observe(
                        i.events(o),
                        &[
                            KeyValue::new(label::PBX, i.name.clone()),
                            KeyValue::new(label::INPUT, i.kind),
                            KeyValue::new(label::RECEIVER_OUTCOME, o.as_str()),
                        ],
                    );
                }
            }
        }
        Metric::InputErrors => {
            for i in stats.inputs() {
                for r in InputError::ALL {
                    obs.observe(
                        i.errors(r),
                        &[
                            KeyValue::new(label::PBX, i.name.clone()),
                            KeyValue::new(label::INPUT, i.kind),
                            KeyValue::new(label::REASON, r.as_str()),
                        ],
                    );
                }
            }
        }
        other => {
            // A catalogue entry nobody wired: visible in tests (`every_observable_has_a_source`).
            tracing::debug!(
                metric = other.def().name,
                "observable counter has no source"
            );
        }
    }
}

/// The engine's [`Recorder`]: maps labels to attributes and records on the shared instruments.
/// Owned by the engine task (`&mut self`), so its attribute cache needs no lock.
pub struct OtelRecorder {
    instruments: Arc<Instruments>,
    alerts: AlertEmitter,
    cache: AttrCache,
    misuse_reported: u64,
}

impl OtelRecorder {
    /// A recorder over `instruments` that sends alert transitions to `alerts`.
    pub fn new(instruments: Arc<Instruments>, alerts: AlertEmitter) -> OtelRecorder {
        OtelRecorder {
            instruments,
            alerts,
            cache: AttrCache::default(),
            misuse_reported: 0,
        }
    }

    /// Reports once per metric that the engine used the wrong call for its kind.
    fn misuse(&mut self, metric: Metric, call: &'static str) {
        let bit = 1u64 << ((metric as usize) % 64);
        if self.misuse_reported & bit == 0 {
            self.misuse_reported |= bit;
            warn!(
                metric = metric.def().name,
                kind = ?metric.def().kind,
                call,
                "recorder call does not match the metric kind; value dropped"
            );
        }
    }
}

/// Sums still pending when the recorder goes away (a test's recorder, or a task that ended
/// without its final tick) reach the SDK all the same.
impl Drop for OtelRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Turns engine labels into attributes, reusing `attrs`.
fn fill(attrs: &mut Vec<KeyValue>, labels: &[(&'static str, &str)]) {
    attrs.clear();
    attrs.extend(labels.iter().map(|(k, v)| KeyValue::new(*k, v.to_string())));
}

/// Slots of the attribute cache (a power of two). The engine bounds every label value
/// (`engine.max_series`, fixed enums), so a deployment has tens to a few hundred label sets.
const CACHE_SLOTS: usize = 1024;

/// Attribute vectors per label set, so that recording a data point allocates nothing once its
/// label set has been seen (without it: one `String` per label per call, about 20 allocations
/// per CDR, freed again right after). Direct-mapped on a hash of the labels: a hit is confirmed
/// by comparing every key and value, and a label set that lands on an occupied slot replaces
/// its occupant, so memory stays bounded and a collision only costs the allocations it saves.
///
/// Each slot also sums the counter adds made with its label set until the engine's next tick
/// ([`Recorder::flush`]), which hands each sum to the SDK in one `add`. The SDK's own add
/// hashes every attribute and takes a lock (about 130 ns; 3–4 adds per CDR), a pending sum is
/// one comparison of a metric index; a Prometheus scrape or OTLP export sees counters at most
/// one tick (1 s by default) late. A slot taken over by another label set hands its sums on
/// first, so nothing is lost.
struct AttrCache {
    slots: Vec<Option<Slot>>,
    /// Slots holding pending counter sums, each once.
    dirty: Vec<usize>,
}

/// One label set's attributes, its histograms bound to them, and its counter sums not yet
/// handed to the SDK.
#[derive(Clone)]
struct Slot {
    hash: u64,
    /// The labels laid end to end (see [`pack`]): a hit is confirmed by reading this one
    /// buffer, where comparing `attrs` chased a pointer per key and per value — at 10,000
    /// records/s, with the cache cold between requests, each one a miss.
    packed: Vec<u8>,
    attrs: Vec<KeyValue>,
    /// `(metric, sum)`: a label set feeds one to three counters, so a short list beats a map.
    pending: Vec<(Metric, u64)>,
    /// Histograms bound to `attrs` (the SDK's bound instruments): a recording goes straight to
    /// its aggregator, skipping the SDK's hash of every attribute and its map lookup.
    bound: Vec<(Metric, BoundHistogram<f64>)>,
}

impl Slot {
    /// `histogram` bound to this slot's attributes, bound on first use.
    fn histogram(&mut self, metric: Metric, histogram: &Histogram<f64>) -> &BoundHistogram<f64> {
        let index = match self.bound.iter().position(|(m, _)| *m == metric) {
            Some(i) => i,
            None => {
                self.bound.push((metric, histogram.bind(&self.attrs)));
                self.bound.len() - 1
            }
        };
        &self.bound[index].1
    }

    fn hand_on(&mut self, add: &mut impl FnMut(Metric, u64, &[KeyValue])) {
        for (metric, sum) in self.pending.drain(..) {
            add(metric, sum, &self.attrs);
        }
    }
}

impl Default for AttrCache {
    fn default() -> Self {
        AttrCache {
            slots: vec![None; CACHE_SLOTS],
            dirty: Vec::new(),
        }
    }
}

impl AttrCache {
    /// A word-at-a-time multiply-rotate hash (FxHash's mixing) of the labels, keys and values
    /// by content, each with its length so `("ab","c")` and `("a","bc")` differ. Not by the
    /// key's address: a `const` string may live at a different address at each use, so one label
    /// set would hash differently from one call site to another. Not DoS-resistant, and it needs
    /// not be: label values are bounded by the engine, and a hit is always verified by content.
    fn hash(labels: &[(&'static str, &str)]) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
        let bytes = |mut h: u64, b: &[u8]| {
            let mut chunks = b.chunks_exact(8);
            for c in &mut chunks {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                h = mix(h, u64::from_le_bytes(w));
            }
            if !chunks.remainder().is_empty() {
                let mut w = [0u8; 8];
                w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
                h = mix(h, u64::from_le_bytes(w));
            }
            h
        };
        let mut h = 0u64;
        for (k, v) in labels {
            h = mix(h, (k.len() as u64) | ((v.len() as u64) << 32));
            h = bytes(h, k.as_bytes());
            h = bytes(h, v.as_bytes());
        }
        h
    }

    /// The slot of `labels`, (re)built when it holds another label set, whose pending sums
    /// are handed to `add` first.
    fn slot(
        &mut self,
        labels: &[(&'static str, &str)],
        add: &mut impl FnMut(Metric, u64, &[KeyValue]),
    ) -> Option<(usize, &mut Slot)> {
        let hash = Self::hash(labels);
        // The top bits: the multiply pushes the best-mixed bits up.
        let index = (hash >> (64 - CACHE_SLOTS.trailing_zeros())) as usize;
        let entry = self.slots.get_mut(index)?;
        let hit = matches!(entry, Some(s) if s.hash == hash && packed_eq(&s.packed, labels));
        if !hit {
            if let Some(old) = entry.as_mut() {
                old.hand_on(add);
            }
            let mut attrs = Vec::with_capacity(labels.len());
            fill(&mut attrs, labels);
            *entry = Some(Slot {
                hash,
                packed: pack(labels),
                attrs,
                pending: Vec::new(),
                bound: Vec::new(),
            });
        }
        entry.as_mut().map(|s| (index, s))
    }

    /// The attributes of `labels`, built only when their slot holds another label set.
    #[cfg(test)]
    fn attributes(&mut self, labels: &[(&'static str, &str)]) -> &[KeyValue] {
        // Tests only, with no counter sums pending: a sum in a slot taken over here is dropped.
        let mut nothing = |_: Metric, _: u64, _: &[KeyValue]| {};
        match self.slot(labels, &mut nothing) {
            Some((_, slot)) => slot.attrs.as_slice(),
            None => &[],
        }
    }

    /// Adds `value` to the pending sum of `metric` with `labels`; `add` receives the sums of a
    /// label set that loses its slot.
    fn add_pending(
        &mut self,
        metric: Metric,
        value: u64,
        labels: &[(&'static str, &str)],
        mut add: impl FnMut(Metric, u64, &[KeyValue]),
    ) {
        // Taken over slots are handed on inside `slot`; their index stays in `dirty` (it is
        // dirty again below, or flushed as empty).
        let Some((index, slot)) = self.slot(labels, &mut add) else {
            return;
        };
        let was_clean = slot.pending.is_empty();
        match slot.pending.iter_mut().find(|(m, _)| *m == metric) {
            Some((_, sum)) => *sum = sum.saturating_add(value),
            None => slot.pending.push((metric, value)),
        }
        if was_clean && !self.dirty.contains(&index) {
            self.dirty.push(index);
        }
    }

    /// Hands every pending sum to `add`.
    fn flush(&mut self, mut add: impl FnMut(Metric, u64, &[KeyValue])) {
        for index in self.dirty.drain(..) {
            if let Some(Some(slot)) = self.slots.get_mut(index) {
                slot.hand_on(&mut add);
            }
        }
    }
}

/// The labels laid end to end: per label its key's and its value's length (4 bytes each) and
/// bytes. Lengths first, so `("ab","c")` and `("a","bc")` differ.
fn pack(labels: &[(&'static str, &str)]) -> Vec<u8> {
    let len = labels.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(len);
    for (k, v) in labels {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// Whether `packed` is [`pack`]`(labels)`, read without building it.
fn packed_eq(packed: &[u8], labels: &[(&'static str, &str)]) -> bool {
    let mut rest = packed;
    for (k, v) in labels {
        let (k, v) = (k.as_bytes(), v.as_bytes());
        let Some((head, tail)) = rest.split_at_checked(8) else {
            return false;
        };
        if head[..4] != (k.len() as u32).to_le_bytes()
            || head[4..] != (v.len() as u32).to_le_bytes()
        {
            return false;
        }
        let Some((kv, tail)) = tail.split_at_checked(k.len() + v.len()) else {
            return false;
        };
        if kv[..k.len()] != *k || kv[k.len()..] != *v {
            return false;
        }
        rest = tail;
    }
    rest.is_empty()
}

impl Recorder for OtelRecorder {
    fn add(&mut self, metric: Metric, value: u64, labels: &[(&'static str, &str)]) {
        match self.instruments.counters.get(metric as usize) {
            Some(Some(_)) => {
                let counters = &self.instruments.counters;
                self.cache
                    .add_pending(metric, value, labels, |m, v, attrs| {
                        if let Some(Some(c)) = counters.get(m as usize) {
                            c.add(v, attrs);
                        }
                    });
            }
            _ => self.misuse(metric, "add"),
        }
    }

    fn record(&mut self, metric: Metric, value: f64, labels: &[(&'static str, &str)]) {
        match self.instruments.histograms.get(metric as usize) {
            Some(Some(histogram)) if value.is_finite() => {
                // The slot may hold a counter's label set with sums pending: they go on first.
                let counters = &self.instruments.counters;
                let mut hand_on = |m: Metric, v: u64, attrs: &[KeyValue]| {
                    if let Some(Some(c)) = counters.get(m as usize) {
                        c.add(v, attrs);
                    }
                };
                if let Some((_, slot)) = self.cache.slot(labels, &mut hand_on) {
                    slot.histogram(metric, histogram).record(value);
                }
            }
            Some(Some(_)) => {} // NaN/inf would corrupt the sum: dropped.
            _ => self.misuse(metric, "record"),
        }
    }

    fn alert(&mut self, transition: &AlertTransition) {
        for dropped in self.alerts.emit(transition) {
            self.add(
                Metric::AlertsDropped,
                1,
                &[(label::ALERT_RULE, &dropped.transition.rule)],
            );
        }
    }

    fn flush(&mut self) {
        let counters = &self.instruments.counters;
        self.cache.flush(|m, v, attrs| {
            if let Some(Some(c)) = counters.get(m as usize) {
                c.add(v, attrs);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_order_is_the_index() {
        for (i, m) in Metric::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i, "{:?}", m);
        }
        assert!(Metric::ALL.len() <= 64, "misuse bitmask holds 64 metrics");
    }

    /// Pending sums lose nothing when label sets outnumber the slots and take each other's
    /// slots over: every add reaches the SDK once, by the take-over or by the flush.
    #[test]
    fn pending_counter_sums_survive_slot_take_overs() {
        use std::collections::HashMap;
        let mut cache = AttrCache::default();
        let mut seen: HashMap<(Metric, String), u64> = HashMap::new();
        let mut expected: HashMap<(Metric, String), u64> = HashMap::new();
        let key = |attrs: &[KeyValue]| {
            attrs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(",")
        };
        let names: Vec<String> = (0..3 * CACHE_SLOTS).map(|i| format!("trunk-{i}")).collect();
        for round in 0..3u64 {
            for (i, name) in names.iter().enumerate() {
                let metric = if i % 3 == 0 {
                    Metric::Calls
                } else {
                    Metric::SipResponses
                };
                let value = 1 + (i as u64 % 7) + round;
                let labels = [(label::PBX, "p"), (label::TRUNK, name.as_str())];
                cache.add_pending(metric, value, &labels, |m, v, attrs| {
                    *seen.entry((m, key(attrs))).or_default() += v;
                });
                *expected
                    .entry((metric, format!("voip.pbx=p,voip.trunk={name}")))
                    .or_default() += value;
            }
            if round == 1 {
                cache.flush(|m, v, attrs| *seen.entry((m, key(attrs))).or_default() += v);
            }
        }
        let total = |m: &HashMap<(Metric, String), u64>| m.values().sum::<u64>();
        assert!(
            total(&seen) < total(&expected),
            "some sums pending before the flush"
        );
        cache.flush(|m, v, attrs| *seen.entry((m, key(attrs))).or_default() += v);
        assert_eq!(seen, expected);
        cache.flush(|_, _, _| panic!("a second flush has nothing to hand on"));
    }

    /// Cost of the engine's hot path. Run in release:
    /// `cargo test --release --lib export::instruments::tests::recorder_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "benchmark: run in release by hand"]
    #[allow(clippy::disallowed_methods)] // a benchmark needs the real clock
    fn recorder_cost() {
        use opentelemetry::metrics::MeterProvider as _;
        use opentelemetry_sdk::metrics::{ManualReader, SdkMeterProvider};
        let provider = SdkMeterProvider::builder()
            .with_reader(ManualReader::builder().build())
            .build();
        let meter = provider.meter("bench");
        let (_tx, rx) = watch::channel(SharedSnapshot::default());
        let instruments = Arc::new(Instruments::new(&meter, rx, Arc::new(SelfStats::default())));
        let mut rec = OtelRecorder::new(instruments, AlertEmitter::new(None, None));
        let dispositions = ["answered", "busy", "no_answer", "failed"];
        let trunks = ["t1", "t2", "t3", "other"];
        let n = 1_000_000u64;
        let run = |f: &mut dyn FnMut(usize)| {
            let start = std::time::Instant::now();
            for i in 0..n as usize {
                f(i);
            }
            start.elapsed().as_nanos() as f64 / n as f64
        };
        let recorder_add = run(&mut |i| {
            // The engine flushes once per tick: every 10,000 adds is a tick at 10,000 CDRs/s.
            if i % 10_000 == 0 {
                rec.flush();
            }
            rec.add(
                Metric::Calls,
                1,
                &[
                    (label::DISPOSITION, dispositions[i % 4]),
                    (label::DIRECTION, "inbound"),
                    (label::TRUNK, trunks[(i / 4) % 4]),
                    (label::PBX, "pbx-a"),
                ],
            )
        });
        let recorder_hist = run(&mut |i| {
            rec.record(
                Metric::CallDuration,
                (i % 600) as f64,
                &[(label::TRUNK, trunks[i % 4]), (label::PBX, "pbx-a")],
            )
        });
        let counter = meter.u64_counter("baseline").build();
        let prebuilt: Vec<Vec<KeyValue>> = (0..16)
            .map(|i| {
                vec![
                    KeyValue::new(label::DISPOSITION, dispositions[i % 4]),
                    KeyValue::new(label::DIRECTION, "inbound"),
                    KeyValue::new(label::TRUNK, trunks[(i / 4) % 4]),
                    KeyValue::new(label::PBX, "pbx-a"),
                ]
            })
            .collect();
        let sdk_add = run(&mut |i| counter.add(1, &prebuilt[i % 16]));
        let mut cache = AttrCache::default();
        let cached = run(&mut |i| {
            std::hint::black_box(cache.attributes(&[
                (label::DISPOSITION, dispositions[i % 4]),
                (label::DIRECTION, "inbound"),
                (label::TRUNK, trunks[(i / 4) % 4]),
                (label::PBX, "pbx-a"),
            ]));
        });
        let sdk_add_owned = run(&mut |i| {
            let mut v = Vec::new();
            fill(
                &mut v,
                &[
                    (label::DISPOSITION, dispositions[i % 4]),
                    (label::DIRECTION, "inbound"),
                    (label::TRUNK, trunks[(i / 4) % 4]),
                    (label::PBX, "pbx-a"),
                ],
            );
            counter.add(1, &v)
        });
        println!(
            "attribute cache lookup, 4 labels: {cached:.0} ns; SDK add with freshly built attributes: {sdk_add_owned:.0} ns"
        );
        println!(
            "recorder add, 4 labels: {recorder_add:.0} ns; record, 2 labels: {recorder_hist:.0} ns; \
             bare SDK add with prebuilt attributes: {sdk_add:.0} ns"
        );
    }

    fn built(labels: &[(&'static str, &str)]) -> Vec<KeyValue> {
        let mut v = Vec::new();
        fill(&mut v, labels);
        v
    }

    #[test]
    fn cached_attributes_are_what_fill_builds() {
        let mut cache = AttrCache::default();
        let sets: [&[(&'static str, &str)]; 4] = [
            &[(label::PBX, "a"), (label::TRUNK, "t1")],
            &[(label::PBX, "a"), (label::TRUNK, "t2")],
            // Same bytes split differently: must not be taken for one another.
            &[(label::PBX, "at"), (label::TRUNK, "1")],
            &[],
        ];
        for _ in 0..3 {
            for set in sets {
                assert_eq!(cache.attributes(set), built(set).as_slice());
            }
        }
        let held = cache.slots.iter().flatten().count();
        assert!(held >= 1 && held <= sets.len(), "{held} slots used");
    }

    #[test]
    fn label_sets_sharing_a_slot_evict_each_other_and_stay_correct() {
        let mut cache = AttrCache::default();
        // More label sets than slots: collisions are certain, answers must stay exact.
        let names: Vec<String> = (0..3 * CACHE_SLOTS).map(|i| format!("t{i}")).collect();
        for _ in 0..2 {
            for n in &names {
                let set: &[(&'static str, &str)] = &[(label::PBX, "p"), (label::TRUNK, n)];
                assert_eq!(cache.attributes(set), built(set).as_slice());
            }
        }
        assert_eq!(cache.slots.len(), CACHE_SLOTS, "memory stays bounded");
    }

    /// A meter provider exporting to memory and a recorder on its instruments: tests read back
    /// what the SDK would export.
    struct SdkRig {
        provider: opentelemetry_sdk::metrics::SdkMeterProvider,
        exporter: opentelemetry_sdk::metrics::InMemoryMetricExporter,
    }

    impl SdkRig {
        fn start(alerts: AlertEmitter) -> (SdkRig, OtelRecorder) {
            use opentelemetry::metrics::MeterProvider as _;
            use opentelemetry_sdk::metrics::{
                InMemoryMetricExporter, PeriodicReader, SdkMeterProvider,
            };
            let exporter = InMemoryMetricExporter::default();
            let provider = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(exporter.clone()).build())
                .build();
            let meter = provider.meter("t");
            let (_tx, rx) = watch::channel(SharedSnapshot::default());
            let instruments =
                Arc::new(Instruments::new(&meter, rx, Arc::new(SelfStats::default())));
            let rec = OtelRecorder::new(instruments, alerts);
            (SdkRig { provider, exporter }, rec)
        }

        /// Exports now and hands `f` the data of every exported `metric`.
        fn each(
            &self,
            metric: Metric,
            mut f: impl FnMut(&opentelemetry_sdk::metrics::data::AggregatedMetrics),
        ) {
            self.provider.force_flush().unwrap();
            for rm in self.exporter.get_finished_metrics().unwrap() {
                for sm in rm.scope_metrics() {
                    for m in sm.metrics().filter(|m| m.name() == metric.def().name) {
                        f(m.data());
                    }
                }
            }
        }
    }

    /// A histogram's label set taking over the slot of a counter's label set with a sum
    /// pending hands that sum on (CI caught the sum being dropped: which label sets share a
    /// slot depends on where the linker put the label keys).
    #[test]
    fn a_histogram_taking_a_counters_slot_hands_its_sum_on() {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

        let index = |labels: &[(&'static str, &str)]| {
            (AttrCache::hash(labels) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
        };
        let names: Vec<String> = (0..4 * CACHE_SLOTS).map(|i| format!("t{i}")).collect();
        let first = [(label::PBX, "p"), (label::TRUNK, names[0].as_str())];
        let other = names[1..]
            .iter()
            .find(|n| index(&[(label::PBX, "p"), (label::TRUNK, n.as_str())]) == index(&first))
            .expect("4,096 label sets over 1,024 slots share one");
        let (sdk, mut rec) = SdkRig::start(AlertEmitter::new(None, None));
        rec.add(Metric::Calls, 3, &first);
        rec.record(
            Metric::CallPostDialDelay,
            1.5,
            &[(label::PBX, "p"), (label::TRUNK, other.as_str())],
        );
        rec.flush();
        let mut calls = 0;
        sdk.each(Metric::Calls, |data| {
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = data {
                calls += sum.data_points().map(|p| p.value()).sum::<u64>();
            }
        });
        assert_eq!(calls, 3);
    }

    #[test]
    fn packed_labels_match_only_themselves() {
        let sets: [&[(&'static str, &str)]; 6] = [
            &[(label::PBX, "a"), (label::TRUNK, "t1")],
            &[(label::PBX, "a"), (label::TRUNK, "t2")],
            &[(label::PBX, "at"), (label::TRUNK, "1")],
            &[(label::PBX, "a")],
            &[(label::TRUNK, "a")],
            &[],
        ];
        for (i, a) in sets.iter().enumerate() {
            for (j, b) in sets.iter().enumerate() {
                assert_eq!(packed_eq(&pack(a), b), i == j, "{a:?} against {b:?}");
            }
        }
    }

    /// Histograms recorded through bound handles, with more label sets than slots (so handles
    /// are dropped and bound again), export exactly what was recorded, per label set.
    #[test]
    fn bound_histograms_count_every_value_across_slot_take_overs() {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
        use std::collections::HashMap;

        let (sdk, mut rec) = SdkRig::start(AlertEmitter::new(None, None));
        // More than the slots, fewer than the SDK's cardinality limit (2,000 per instrument).
        let trunks: Vec<String> = (0..CACHE_SLOTS + 500).map(|i| format!("t{i}")).collect();
        let mut expected: HashMap<String, (u64, f64)> = HashMap::new();
        for round in 0..3 {
            for (i, t) in trunks.iter().enumerate() {
                let v = (i % 50) as f64 + f64::from(round);
                rec.record(
                    Metric::CallPostDialDelay,
                    v,
                    &[(label::PBX, "p"), (label::TRUNK, t)],
                );
                let e = expected.entry(t.clone()).or_default();
                e.0 += 1;
                e.1 += v;
            }
        }
        let mut got: HashMap<String, (u64, f64)> = HashMap::new();
        sdk.each(Metric::CallPostDialDelay, |data| {
            if let AggregatedMetrics::F64(MetricData::Histogram(h)) = data {
                for p in h.data_points() {
                    let trunk = p
                        .attributes()
                        .find(|kv| kv.key.as_str() == label::TRUNK)
                        .map(|kv| kv.value.to_string())
                        .unwrap();
                    got.insert(trunk, (p.count(), p.sum()));
                }
            }
        });
        assert_eq!(got.len(), expected.len());
        for (t, (n, sum)) in &expected {
            let (gn, gsum) = got[t];
            assert_eq!(gn, *n, "{t}");
            assert!((gsum - sum).abs() < 1e-9, "{t}: {gsum} vs {sum}");
        }
    }

    #[test]
    fn a_transition_dropped_from_the_full_outbox_is_counted_by_rule() {
        use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

        use crate::alert::{AlertState, SharedOutbox};
        use crate::export::logs::OutboxSender;
        use crate::signal::Severity;

        let outbox = SharedOutbox::new(1);
        let emitter = AlertEmitter::new(
            Some(OutboxSender {
                outbox: outbox.clone(),
                wake: Arc::new(tokio::sync::Notify::new()),
            }),
            None,
        );
        let (sdk, mut rec) = SdkRig::start(emitter);
        let t = |state, secs| AlertTransition {
            rule: "registration_failures".into(),
            severity: Severity::Critical,
            state,
            value: 0.1,
            threshold: 0.05,
            window: std::time::Duration::from_secs(300),
            scope: vec![(label::PBX, "p".into())],
            labels: vec![],
            body: "b".into(),
            at: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
        };
        rec.alert(&t(AlertState::Firing, 10));
        rec.alert(&t(AlertState::Resolved, 20));
        rec.alert(&t(AlertState::Firing, 30));
        assert_eq!(outbox.lock().len(), 1, "a cap of one keeps the newest");
        // Counter adds wait for the engine's tick.
        rec.flush();
        let mut dropped = None;
        sdk.each(Metric::AlertsDropped, |data| {
            if let AggregatedMetrics::U64(MetricData::Sum(sum)) = data {
                for p in sum.data_points() {
                    let rule = p
                        .attributes()
                        .find(|kv| kv.key.as_str() == label::ALERT_RULE)
                        .map(|kv| kv.value.to_string());
                    dropped = Some((rule, p.value()));
                }
            }
        });
        assert_eq!(
            dropped,
            Some((Some("registration_failures".to_string()), 2))
        );
    }

    #[test]
    fn every_observable_has_a_source() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl AsyncInstrument<u64> for Count {
            fn observe(&self, _: u64, _: &[KeyValue]) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stats = SelfStats::default();
        stats.set_refusals(std::sync::Arc::new(crate::receiver::Refusals::default()));
        stats.register_input("ami", "pbx");
        for &m in Metric::ALL {
            if m.def().kind == Kind::ObservableCounter {
                let c = Count(Default::default());
                observe_self_counter(m, &stats, &c);
                assert!(
                    c.0.load(std::sync::atomic::Ordering::Relaxed) > 0,
                    "{}",
                    m.def().name
                );
            }
        }
    }
}
