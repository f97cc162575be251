//! [`TraceCapture`]: a `tracing` subscriber that keeps the events it sees as
//! text, for tests that check what a library reports.

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Keeps each event at `level` or more severe as one line of `field=value`
/// pairs (the message is the field `message`). Clones share the lines.
///
/// ```
/// use flashlog_testkit::TraceCapture;
///
/// let capture = TraceCapture::at(tracing::Level::WARN);
/// tracing::subscriber::with_default(capture.clone(), || {
///     tracing::warn!(segment = "segment-0001.log", "slow fdatasync");
///     tracing::info!("not kept");
/// });
/// assert_eq!(capture.lines().len(), 1);
/// assert!(capture.contains("slow fdatasync"));
/// ```
#[derive(Clone)]
pub struct TraceCapture {
    level: Level,
    lines: Arc<Mutex<Vec<String>>>,
}

impl fmt::Debug for TraceCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceCapture")
            .field("level", &self.level)
            .field("lines", &self.lines().len())
            .finish()
    }
}

impl TraceCapture {
    /// A capture of the events at `level` or more severe.
    pub fn at(level: Level) -> TraceCapture {
        TraceCapture {
            level,
            lines: Arc::default(),
        }
    }

    /// The events kept so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Whether a kept event's text contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lines().iter().any(|line| line.contains(needle))
    }
}

impl Subscriber for TraceCapture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.level
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        struct Text(String);
        impl Visit for Text {
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.lines
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(text.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
