//! Delivery of alert transitions from the outbox to the OTLP logs exporter, at least once.
//!
//! The SDK's batch processor hands each record to the exporter once and forgets it when the export
//! fails, so a page raised while the backend is down never arrives. Here the outbox
//! ([`crate::alert::outbox`]) keeps every transition until an export containing it succeeded; a
//! task takes the oldest (up to [`MAX_BATCH`]), has them exported, and on success removes them, on
//! failure waits ([`Backoff`]: 1 s doubling to 30 s) and tries again. Exports run on a plain thread
//! of their own, as the SDK's processors do, because the OTLP/HTTP exporter uses a blocking client
//! that must not run on (or inside) a tokio worker. The exporter's own retries are turned off
//! (`otlp::log_exporter`): this loop owns the retry policy, so the two don't multiply.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLogRecord, SdkLoggerProvider};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::logs::{attr, fill_record};
use crate::alert::{OutboxEntry, SharedOutbox};

/// Most transitions per export request: one request stays small even after a long outage.
pub const MAX_BATCH: usize = 512;
/// First wait after a failed export.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two attempts while the backend stays down.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Exponential backoff between failed attempts: `min`, `2 × min`, … capped at `max`, with up to
/// 10 % random extra so many sidecars that lost the same backend do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = base.mul_f64(fastrand::f64() * 0.1);
        (base + jitter).min(self.max + self.max / 10)
    }

    /// Back to `min` after a success.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// One export request for the worker thread.
struct Job {
    entries: Vec<OutboxEntry>,
    reply: oneshot::Sender<OTelSdkResult>,
}

/// What the delivery task can be asked besides "new work".
enum Control {
    /// Deliver everything now, ignoring the backoff; answer whether the outbox emptied.
    Flush(std::sync::mpsc::SyncSender<bool>),
    /// Like `Flush`, then end the task (shutdown).
    Finish,
}

/// The running delivery task and its worker thread.
#[derive(Debug)]
pub struct Delivery {
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    control: mpsc::Sender<Control>,
    task: JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering `outbox` through `exporter` (its failures are counted by the caller's
    /// wrapper). Each attempt waits at most `attempt_timeout` for the exporter's answer.
    pub fn start<E: LogExporter + 'static>(
        exporter: E,
        resource: Resource,
        scope: InstrumentationScope,
        outbox: SharedOutbox,
        attempt_timeout: Duration,
    ) -> std::io::Result<Delivery> {
        let jobs = spawn_worker(exporter, resource, scope)?;
        let wake = Arc::new(Notify::new());
        let (control, control_rx) = mpsc::channel(8);
        let task = tokio::spawn(run(
            outbox.clone(),
            wake.clone(),
            control_rx,
            jobs,
            attempt_timeout,
            Backoff::new(BACKOFF_MIN, BACKOFF_MAX),
        ));
        Ok(Delivery {
            outbox,
            wake,
            control,
            task,
        })
    }

    /// The outbox this task delivers.
    pub fn outbox(&self) -> &SharedOutbox {
        &self.outbox
    }

    /// What the emitter pokes after a push.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tries to deliver everything now and waits up to `timeout` for the answer. Blocks the
    /// calling thread (the caller steps off the tokio worker first). True when the outbox emptied.
    pub fn flush_blocking(&self, timeout: Duration) -> bool {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if self.control.try_send(Control::Flush(tx)).is_err() {
            return false;
        }
        rx.recv_timeout(timeout).unwrap_or(false)
    }

    /// One last attempt to deliver what waits, then the task ends. Returns how many transitions
    /// are still undelivered (kept in the outbox, hence in the state file) when it ended or when
    /// `deadline` passed.
    pub async fn finish(self, deadline: Instant) -> usize {
        let Delivery {
            outbox,
            control,
            mut task,
            ..
        } = self;
        let _ = tokio::time::timeout_at(deadline, control.send(Control::Finish)).await;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            // An export hanging past the deadline: what it carried stays in the outbox.
            debug!("alert delivery still busy at the shutdown deadline; stopped");
            task.abort();
        }
        outbox.lock().len()
    }
}

/// How one attempt went.
#[derive(Debug, PartialEq)]
enum Attempt {
    Empty,
    Delivered,
    Failed,
}

async fn run(
    outbox: SharedOutbox,
    wake: Arc<Notify>,
    mut control: mpsc::Receiver<Control>,
    jobs: std::sync::mpsc::Sender<Job>,
    attempt_timeout: Duration,
    mut backoff: Backoff,
) {
    let mut retry_at: Option<Instant> = None;
    loop {
        let due = retry_at.is_none_or(|t| Instant::now() >= t);
        if due {
            match attempt(&outbox, &jobs, attempt_timeout).await {
                Attempt::Delivered => {
                    backoff.reset();
                    retry_at = None;
                    continue;
                }
                Attempt::Failed => {
                    let wait = backoff.next_delay();
                    debug!(wait = ?wait, waiting = outbox.lock().len(), "alert delivery failed; retrying later");
                    retry_at = Some(Instant::now() + wait);
                }
                Attempt::Empty => retry_at = None,
            }
        }
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            c = control.recv() => {
                let finish = !matches!(c, Some(Control::Flush(_)));
                let emptied = drain(&outbox, &jobs, attempt_timeout).await;
                if emptied {
                    backoff.reset();
                    retry_at = None;
                }
                if let Some(Control::Flush(reply)) = c {
                    let _ = reply.send(emptied);
                }
                if finish {
                    break;
                }
            }
            // New work only counts when not backing off: a push must not shorten the wait.
            () = wake.notified(), if retry_at.is_none() => {}
            () = retry => {}
        }
    }
}

/// Attempts until the outbox is empty or an attempt fails; true when it emptied.
async fn drain(
    outbox: &SharedOutbox,
    jobs: &std::sync::mpsc::Sender<Job>,
    attempt_timeout: Duration,
) -> bool {
    loop {
        match attempt(outbox, jobs, attempt_timeout).await {
            Attempt::Empty => return true,
            Attempt::Delivered => {}
            Attempt::Failed => return false,
        }
    }
}

/// Exports the oldest waiting transitions once; acknowledges them on success.
async fn attempt(
    outbox: &SharedOutbox,
    jobs: &std::sync::mpsc::Sender<Job>,
    attempt_timeout: Duration,
) -> Attempt {
    let entries = outbox.lock().peek(MAX_BATCH);
    if entries.is_empty() {
        return Attempt::Empty;
    }
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let (reply, answer) = oneshot::channel();
    if jobs.send(Job { entries, reply }).is_err() {
        warn!("alert export worker is gone; transitions stay in the outbox");
        return Attempt::Failed;
    }
    match tokio::time::timeout(attempt_timeout, answer).await {
        Ok(Ok(Ok(()))) => {
            let acked = outbox.lock().ack(&ids);
            debug!(acked, "alert transitions delivered");
            Attempt::Delivered
        }
        // Counted and logged (rate-limited) by the exporter's wrapper.
        Ok(Ok(Err(_))) => Attempt::Failed,
        Ok(Err(_)) => {
            warn!("alert export worker ended during an export");
            Attempt::Failed
        }
        Err(_) => {
            debug!(timeout = ?attempt_timeout, "alert export did not answer in time");
            Attempt::Failed
        }
    }
}

/// Starts the thread that runs exports one at a time; it ends when the job sender is dropped.
fn spawn_worker<E: LogExporter + 'static>(
    mut exporter: E,
    resource: Resource,
    scope: InstrumentationScope,
) -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("callpulse-alert-export".into())
        .spawn(move || {
            exporter.set_resource(&resource);
            // A provider with no processor: only its logger's record constructor is used.
            let provider = SdkLoggerProvider::builder().build();
            let logger = provider.logger_with_scope(scope.clone());
            while let Ok(job) = rx.recv() {
                let export = || {
                    let records: Vec<SdkLogRecord> = job
                        .entries
                        .iter()
                        .map(|e| {
                            let mut r = logger.create_log_record();
                            fill_record(&mut r, &e.transition);
                            // The OTLP encoder requires an observed time. The engine observed
                            // the transition at its own time; a retry must not change the record.
                            r.set_observed_timestamp(e.transition.at);
                            r.add_attribute(attr::ID, e.id.clone());
                            r
                        })
                        .collect();
                    let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                        records.iter().map(|r| (r, &scope)).collect();
                    block_on(exporter.export(LogBatch::new(&pairs)))
                };
                // A panic inside the exporter fails this attempt, not every later one.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(export))
                    .unwrap_or_else(|_| {
                        Err(OTelSdkError::InternalFailure(
                            "alert export panicked".into(),
                        ))
                    });
                let _ = job.reply.send(result);
            }
            if let Err(e) = exporter.shutdown_with_timeout(Duration::from_secs(1))
                && !matches!(e, OTelSdkError::AlreadyShutdown)
            {
                debug!(error = %e, "alert exporter shutdown");
            }
            drop(logger);
            let _ = provider.shutdown();
        })?;
    Ok(tx)
}

/// Wakes the parked worker thread.
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current (non-tokio) thread, as the SDK's own processors do
/// with `futures_executor::block_on`: the gRPC exporter's I/O runs on the tokio runtime it was
/// built in, the HTTP exporter's blocking client needs no executor at all.
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::SystemTime;

    use super::*;
    use crate::alert::{AlertState, AlertTransition};
    use crate::metrics::label;
    use crate::signal::Severity;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
        let waits: Vec<Duration> = (0..7).map(|_| b.next_delay()).collect();
        let floors = [1, 2, 4, 8, 16, 30, 30];
        for (w, f) in waits.iter().zip(floors) {
            let f = Duration::from_secs(f);
            assert!(*w >= f && *w <= f + f / 10, "{waits:?}");
        }
        b.reset();
        assert!(b.next_delay() < Duration::from_millis(1100));
    }

    /// Fails while `down`, records what it was given otherwise.
    #[derive(Debug, Clone, Default)]
    struct Switchable {
        down: Arc<AtomicBool>,
        got: Arc<Mutex<Vec<String>>>,
    }

    impl LogExporter for Switchable {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            if self.down.load(Ordering::SeqCst) {
                return Err(OTelSdkError::InternalFailure("connection refused".into()));
            }
            for (r, _) in batch.iter() {
                let id = r
                    .attributes_iter()
                    .find(|(k, _)| k.as_str() == attr::ID)
                    .map(|(_, v)| format!("{v:?}"))
                    .unwrap_or_default();
                self.got.lock().unwrap().push(id);
            }
            Ok(())
        }
    }

    fn transition(at_s: u64) -> AlertTransition {
        AlertTransition {
            rule: "r".into(),
            severity: Severity::Critical,
            state: AlertState::Firing,
            value: 1.0,
            threshold: 0.5,
            window: Duration::from_secs(60),
            scope: vec![(label::PBX, "p".into())],
            labels: vec![],
            body: "b".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at_s),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_export_is_retried_until_it_succeeds_and_then_acknowledged() {
        let exporter = Switchable::default();
        exporter.down.store(true, Ordering::SeqCst);
        let outbox = SharedOutbox::new(100);
        let d = Delivery::start(
            exporter.clone(),
            Resource::builder_empty().build(),
            InstrumentationScope::builder("t").build(),
            outbox.clone(),
            Duration::from_secs(5),
        )
        .unwrap();
        outbox.lock().push(OutboxEntry::new(transition(1)));
        d.waker().notify_one();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(outbox.lock().len(), 1, "kept while the backend is down");
        assert!(exporter.got.lock().unwrap().is_empty());
        exporter.down.store(false, Ordering::SeqCst);
        // The retry after the first backoff (about 1 s) delivers it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !outbox.lock().is_empty() {
            assert!(
                Instant::now() < deadline,
                "not delivered after the backend returned"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(exporter.got.lock().unwrap().len(), 1, "delivered once");
        assert_eq!(d.finish(Instant::now() + Duration::from_secs(2)).await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finish_reports_what_could_not_be_delivered() {
        let exporter = Switchable::default();
        exporter.down.store(true, Ordering::SeqCst);
        let outbox = SharedOutbox::new(100);
        let d = Delivery::start(
            exporter,
            Resource::builder_empty().build(),
            InstrumentationScope::builder("t").build(),
            outbox.clone(),
            Duration::from_secs(5),
        )
        .unwrap();
        outbox.lock().push(OutboxEntry::new(transition(1)));
        outbox.lock().push(OutboxEntry::new(transition(2)));
        assert_eq!(d.finish(Instant::now() + Duration::from_secs(2)).await, 2);
        assert_eq!(outbox.lock().len(), 2, "still there for the state file");
    }
}
