//! Driving load: closed-loop (every worker sends its next request when the last one is
//! answered: the peak the servers sustain) and paced (requests at a fixed total rate, each
//! latency counted from when the request was due, so a stalled server cannot hide its
//! queue: no coordinated omission). Latencies go into HdrHistograms.

use std::future::Future;
use std::io::IsTerminal as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// One operation of worker `index`; `Err` is a failed request with its reason.
pub(crate) type Operation =
    Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Latencies in microseconds, up to a minute, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap_or_else(|_| {
        unreachable!("the bounds 1 µs .. 60 s with 3 digits are valid for HdrHistogram")
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, 60_000_000)
}

/// What a measured phase gives.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// Requests answered successfully.
    pub(crate) requests: u64,
    /// Requests that failed.
    pub(crate) errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    pub(crate) seconds: f64,
    pub(crate) per_second: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

impl Summary {
    pub(crate) fn of(
        histogram: &Histogram<u64>,
        errors: u64,
        first_error: Option<String>,
        elapsed: Duration,
    ) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        let seconds = elapsed.as_secs_f64();
        let requests = histogram.len();
        Summary {
            requests,
            errors,
            first_error,
            seconds,
            per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Shared progress of a running phase, for the display.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) done: AtomicU64,
    pub(crate) failed: AtomicU64,
}

struct WorkerResult {
    histogram: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// How requests are issued.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Each worker sends as soon as its previous request is answered.
    ClosedLoop,
    /// This many requests per second in all, evenly spread over the workers.
    Rate(f64),
}

/// Runs `operation` on `workers` workers for `warmup` (not recorded) and then `duration`.
pub(crate) async fn run(
    label: &str,
    workers: usize,
    pace: Pace,
    warmup: Duration,
    duration: Duration,
    operation: Operation,
) -> Summary {
    let progress = Arc::new(Progress::default());
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let display = spawn_display(label.to_string(), progress.clone(), measure_from, end);
    let tasks: Vec<_> = (0..workers)
        .map(|index| {
            let operation = operation.clone();
            let progress = progress.clone();
            tokio::spawn(async move {
                let mut result = WorkerResult {
                    histogram: histogram(),
                    errors: 0,
                    first_error: None,
                };
                let interval = match pace {
                    Pace::ClosedLoop => None,
                    Pace::Rate(rate) => {
                        Some(Duration::from_secs_f64(workers as f64 / rate.max(0.001)))
                    }
                };
                // Paced workers start staggered so the total rate is even.
                let mut due = match interval {
                    Some(interval) => start + interval.mul_f64(index as f64 / workers as f64),
                    None => start,
                };
                loop {
                    let scheduled = match interval {
                        Some(interval) => {
                            tokio::time::sleep_until(due.into()).await;
                            let scheduled = due;
                            due += interval;
                            scheduled
                        }
                        None => Instant::now(),
                    };
                    if scheduled >= end {
                        break;
                    }
                    let outcome = operation(index).await;
                    let finished = Instant::now();
                    if scheduled < measure_from {
                        continue;
                    }
                    match outcome {
                        Ok(()) => {
                            let _ = result.histogram.record(micros(finished - scheduled));
                            progress.done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            result.errors += 1;
                            result.first_error.get_or_insert(e);
                            progress.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                result
            })
        })
        .collect();
    let mut all = histogram();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        if let Ok(result) = task.await {
            let _ = all.add(&result.histogram);
            errors += result.errors;
            if first_error.is_none() {
                first_error = result.first_error;
            }
        }
    }
    display.abort();
    clear_progress();
    Summary::of(&all, errors, first_error, duration)
}

fn spawn_display(
    label: String,
    progress: Arc<Progress>,
    measure_from: Instant,
    end: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !std::io::stderr().is_terminal() {
            return;
        }
        let total = end.saturating_duration_since(measure_from).as_secs_f64();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = Instant::now();
            let status = if now < measure_from {
                "warming up".to_string()
            } else {
                let elapsed = (now - measure_from).as_secs_f64();
                let done = progress.done.load(Ordering::Relaxed);
                format!(
                    "{elapsed:4.1}/{total:.0} s  {done} requests  {:.0}/s  {} errors",
                    done as f64 / elapsed.max(0.001),
                    progress.failed.load(Ordering::Relaxed)
                )
            };
            eprint!("\r\x1b[2K  {label}: {status}");
        }
    })
}

/// Runs `count` futures at most `limit` at a time, with a progress line; returns the first
/// error.
pub(crate) async fn bounded<T, F>(
    label: &str,
    limit: usize,
    futures: impl IntoIterator<Item = F>,
) -> anyhow::Result<Vec<T>>
where
    F: Future<Output = anyhow::Result<T>>,
{
    use futures_util::StreamExt as _;
    let futures: Vec<F> = futures.into_iter().collect();
    let total = futures.len();
    let mut stream = futures_util::stream::iter(futures).buffered(limit.max(1));
    let mut out = Vec::with_capacity(total);
    let mut last_shown = Instant::now();
    let shown = std::io::stderr().is_terminal();
    while let Some(item) = stream.next().await {
        out.push(item.inspect_err(|_| clear_progress())?);
        if shown && (last_shown.elapsed() > Duration::from_millis(300) || out.len() == total) {
            eprint!("\r\x1b[2K  {label}: {}/{total}", out.len());
            last_shown = Instant::now();
        }
    }
    clear_progress();
    Ok(out)
}

/// Shows a progress line (on a terminal only), replacing the previous one.
pub(crate) fn show_progress(line: &str) {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K  {line}");
    }
}

/// Clears the progress line.
pub(crate) fn clear_progress() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}
