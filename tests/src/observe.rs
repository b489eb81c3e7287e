//! What `steadfast::observe` reports, seen in-process: a span layer that keeps
//! every span of a thread ([`Spans`]) and a metrics recorder that keeps every
//! series ([`Metrics`]), both installed for the current thread by [`observe`].
//!
//! Installed per thread, so a test on a current-thread runtime sees its own
//! calls and no other test's. Series are kept by name and sorted labels, as
//! `name{a="1",b="2"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A lock that a panicked test thread does not poison for the next assertion.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------------------------ spans --

/// One span as the layer saw it: its name, parent, fields, when it opened and
/// closed.
#[derive(Clone, Debug)]
pub struct SpanSeen {
    /// The span's name (`rpc.client`, `rpc.attempt`, `rpc.server`, …).
    pub name: &'static str,
    /// The index of its parent in [`Spans::named`], if it had one.
    pub parent: Option<usize>,
    /// Its fields as recorded so far, `Debug`-formatted unless a string.
    pub fields: HashMap<String, String>,
    /// When it opened.
    pub opened: Instant,
    /// When it closed, if it has.
    pub closed: Option<Instant>,
}

impl SpanSeen {
    /// The value of field `field`, if recorded.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// A `tracing_subscriber::Layer` keeping every span of the thread it is
/// installed on; clones share what it saw.
#[derive(Clone, Default)]
pub struct Spans(Arc<Mutex<SpansSeen>>);

#[derive(Default)]
struct SpansSeen {
    /// Every span, in the order they opened.
    all: Vec<SpanSeen>,
    /// Indices into `all`, in the order the spans closed.
    closing: Vec<usize>,
}

/// The index of a span in [`SpansSeen::all`], kept in its extensions.
struct Index(usize);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> tracing_subscriber::Layer<S> for Spans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("a new span is in the registry");
        let parent = span
            .parent()
            .and_then(|parent| parent.extensions().get::<Index>().map(|index| index.0));
        let mut seen = SpanSeen {
            name: attrs.metadata().name(),
            parent,
            fields: HashMap::new(),
            opened: Instant::now(),
            closed: None,
        };
        attrs.record(&mut Fields(&mut seen.fields));
        let mut spans = lock(&self.0);
        span.extensions_mut().insert(Index(spans.all.len()));
        spans.all.push(seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(index) = span.extensions().get::<Index>() {
            let mut spans = lock(&self.0);
            values.record(&mut Fields(&mut spans.all[index.0].fields));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        if let Some(index) = span.extensions().get::<Index>() {
            let mut spans = lock(&self.0);
            spans.all[index.0].closed = Some(Instant::now());
            spans.closing.push(index.0);
        }
    }
}

impl Spans {
    /// The spans named `name` with their indices, in the order they opened.
    pub fn named(&self, name: &str) -> Vec<(usize, SpanSeen)> {
        let spans = lock(&self.0);
        spans
            .all
            .iter()
            .enumerate()
            .filter(|(_, span)| span.name == name)
            .map(|(i, span)| (i, span.clone()))
            .collect()
    }

    /// The closed spans named `name`, in the order they closed.
    pub fn closed(&self, name: &str) -> Vec<SpanSeen> {
        let spans = lock(&self.0);
        spans
            .closing
            .iter()
            .map(|&i| &spans.all[i])
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }
}

// ---------------------------------------------------------------- metrics --

/// A `metrics::Recorder` keeping every counter, gauge and histogram by its
/// series, `name{a="1",b="2"}` with the labels sorted.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl metrics::HistogramFn for Samples {
    fn record(&self, value: f64) {
        lock(&self.0).push(value);
    }
}

/// `name{a="1",b="2"}`, labels sorted.
fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}=\"{}\"", label.key(), label.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

/// Whether `series` is named `name` and has every one of `labels`.
fn matches(series: &str, name: &str, labels: &[(&str, &str)]) -> bool {
    let Some(rest) = series.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
        return false;
    };
    let rest = rest.trim_end_matches('}');
    let have: Vec<&str> = rest.split(',').collect();
    labels
        .iter()
        .all(|(k, v)| have.contains(&format!("{k}=\"{v}\"").as_str()))
}

impl Recorder for Metrics {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = lock(&self.counters);
        Counter::from_arc(Arc::clone(counters.entry(series(key)).or_default()))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut gauges = lock(&self.gauges);
        Gauge::from_arc(Arc::clone(gauges.entry(series(key)).or_default()))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = lock(&self.histograms);
        Histogram::from_arc(Arc::clone(histograms.entry(series(key)).or_default()))
    }
}

impl Metrics {
    /// The sum of the counters named `name` whose labels include `labels`.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        lock(&self.counters)
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .map(|(_, value)| value.load(Ordering::SeqCst))
            .sum()
    }

    /// The value of the one counter `series` (`name{a="1",…}`, labels
    /// sorted), 0 if it was never registered.
    pub fn counter_series(&self, series: &str) -> u64 {
        lock(&self.counters)
            .get(series)
            .map_or(0, |value| value.load(Ordering::SeqCst))
    }

    /// Every counter, by series.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        lock(&self.counters)
            .iter()
            .map(|(series, value)| (series.clone(), value.load(Ordering::SeqCst)))
            .collect()
    }

    /// The sum of the gauges named `name` whose labels include `labels`.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        lock(&self.gauges)
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .map(|(_, value)| f64::from_bits(value.load(Ordering::SeqCst)))
            .sum()
    }

    /// The samples of the histograms named `name` whose labels include `labels`.
    pub fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        lock(&self.histograms)
            .iter()
            .filter(|(series, _)| matches(series, name, labels))
            .flat_map(|(_, samples)| lock(&samples.0).clone())
            .collect()
    }

    /// The samples of the one histogram `series` (`name{a="1",…}`, labels
    /// sorted), none if it was never registered.
    pub fn samples_series(&self, series: &str) -> Vec<f64> {
        lock(&self.histograms)
            .get(series)
            .map_or_else(Vec::new, |samples| lock(&samples.0).clone())
    }

    /// Every counter, a `series value` line each, sorted: for a failure's message.
    pub fn dump(&self) -> String {
        let lines: Vec<String> = self
            .counters()
            .into_iter()
            .map(|(series, value)| format!("{series} {value}"))
            .collect();
        lines.join("\n")
    }
}

// ------------------------------------------------------------------ setup --

/// A [`Spans`] layer and a [`Metrics`] recorder installed as the current
/// thread's defaults, for as long as this lives.
pub struct Observing {
    /// Every span of this thread.
    pub spans: Spans,
    /// Every series recorded on this thread.
    pub metrics: &'static Metrics,
    _tracing: tracing::subscriber::DefaultGuard,
    _metrics: metrics::LocalRecorderGuard<'static>,
}

/// Installs a fresh [`Spans`] layer and [`Metrics`] recorder for the current
/// thread (run the test on a current-thread runtime to see its server's and
/// client's tasks too).
pub fn observe() -> Observing {
    let spans = Spans::default();
    let tracing =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    // Leaked: a few per test binary, and the guard borrows it for 'static.
    let metrics: &'static Metrics = Box::leak(Box::default());
    let metrics_guard = metrics::set_default_local_recorder(metrics);
    Observing {
        spans,
        metrics,
        _tracing: tracing,
        _metrics: metrics_guard,
    }
}
