use crate::config::{LogFormat, LogSettings};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// Lines waiting for the log thread; past it new lines are dropped rather than wait (a log
/// collector that stalls must not stall deliveries), and the drop is counted by the writer.
const LOG_QUEUE: usize = 16_384;

/// Text or JSON logs; `RUST_LOG` overrides the configured level. `serve` logs to stdout; a
/// command whose stdout is its answer (`events`, `simulate`, …) logs to stderr, so a pipe gets
/// data only. Lines are written by a thread of their own (`tracing-appender`): a handler formats
/// its line and hands it over, never waiting on the pipe. Keep the guard until exit: dropping it
/// writes what is still queued.
pub fn init(log: &LogSettings, to_stderr: bool) -> tracing_appender::non_blocking::WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: a log file or journald gets plain text.
    let ansi = if to_stderr {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    };
    let (writer, guard) = if to_stderr {
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(LOG_QUEUE)
            .finish(std::io::stderr())
    } else {
        tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(LOG_QUEUE)
            .finish(std::io::stdout())
    };
    let writer = BoxMakeWriter::new(writer);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
