//! Logs and trace context.
//!
//! Logs are JSON lines through `tracing`, with the request's `trace_id` and `request_id` on every
//! line of that request (they are fields of the request span). The trace context follows W3C
//! Trace Context: taken from an incoming `traceparent` or started here, kept in a task-local for
//! the length of the request (or of an event's handling), and passed on in outgoing calls and in
//! the events a request causes.

use std::sync::{Mutex, PoisonError};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// The thread that writes log lines; dropped (which writes what is queued) by [`flush_logs`].
static LOG_WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Start logging once per process. `MARQUEE_LOG` (or `RUST_LOG`) filters; `MARQUEE_LOG_FORMAT=pretty`
/// gives human-readable lines for a terminal. Later calls are no-ops, so tests can call it freely.
///
/// Lines are formatted where they happen and written to stdout by a thread of their own, many
/// per write: one `write` per line, on the request's thread, was a third of what a request
/// through the gateway cost (two access-log lines, perf). Nothing is dropped when the writer
/// falls behind (the logging thread waits instead); [`flush_logs`] writes what is left at exit.
pub fn init_logging() {
    let mut writer = LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner);
    if writer.is_some() {
        return;
    }
    let filter = std::env::var("MARQUEE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn,lapin=warn,tower_http=warn".to_owned());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("MARQUEE_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let (stdout, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(64 * 1024)
        .finish(std::io::stdout());
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if pretty {
        registry.with(fmt::layer().compact().with_writer(stdout)).try_init()
    } else {
        registry
            .with(fmt::layer().json().with_current_span(true).with_span_list(false).with_writer(stdout))
            .try_init()
    };
    // Another subscriber was there first (a test harness's): ours writes nothing.
    if installed.is_ok() {
        *writer = Some(guard);
    }
}

/// Write the log lines still queued, and log to nowhere from now on: call once, at exit.
pub fn flush_logs() {
    drop(LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner).take());
}

/// A W3C trace context: which trace this work belongs to and which span is its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits: the span of this unit of work.
    pub span_id: String,
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace.
    pub fn root() -> Self {
        Self { trace_id: random_hex(16), span_id: random_hex(8), sampled: true }
    }

    /// The next unit of work in the same trace.
    pub fn child(&self) -> Self {
        Self { trace_id: self.trace_id.clone(), span_id: random_hex(8), sampled: self.sampled }
    }

    /// Parse a `traceparent` header (version 00); anything malformed is `None`, and the caller
    /// starts a new trace, as the spec asks.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(span_id, 16)
            && span_id.bytes().any(|b| b != b'0')
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let sampled = u8::from_str_radix(flags, 16).is_ok_and(|f| f & 1 == 1);
        Some(Self { trace_id: trace_id.to_owned(), span_id: span_id.to_owned(), sampled })
    }

    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, if self.sampled { "01" } else { "00" })
    }
}

/// `bytes` random bytes in lowercase hex, never all zero (W3C trace context forbids it). Trace
/// ids need to be unique, not secret: a fast thread-local generator, not a syscall per request.
fn random_hex(bytes: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let random = fastrand::u128(1..).to_le_bytes();
    let mut out = String::with_capacity(bytes * 2);
    for b in random.iter().cycle().take(bytes) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    if out.bytes().all(|b| b == b'0') { random_hex(bytes) } else { out }
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The trace context of the request or event being handled on this task, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The `traceparent` to send on: a child of the current context.
pub fn current_traceparent() -> Option<String> {
    current().map(|c| c.child().traceparent())
}

/// Run `f` with `ctx` as the current trace context.
pub async fn in_context<F: std::future::Future>(ctx: TraceContext, f: F) -> F::Output {
    CURRENT.scope(ctx, f).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_parses_and_round_trips() {
        let h = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ctx = TraceContext::parse(h).expect("valid");
        assert_eq!(ctx.traceparent(), h);
        assert_eq!(ctx.child().trace_id, ctx.trace_id);
        assert_ne!(ctx.child().span_id, ctx.span_id);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for h in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert!(TraceContext::parse(h).is_none(), "{h}");
        }
        let root = TraceContext::root();
        assert!(TraceContext::parse(&root.traceparent()).is_some());
    }
}
