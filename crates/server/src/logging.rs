//! Logging: the server-wide log format (logfmt or JSON lines, on stderr or
//! a rotated file) that every part of the server writes through. The HTTP
//! door's one canonical line per request is built on it in [`crate::http::log`].

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written to stderr (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line (<https://brandur.org/logfmt>).
    #[default]
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// When `--log-file` starts a new file (`--log-rotation`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogRotation {
    /// One file, never rotated.
    #[default]
    Never,
    /// A new file every hour (`PATH.YYYY-MM-DD-HH`).
    Hourly,
    /// A new file every day (`PATH.YYYY-MM-DD`).
    Daily,
}

/// Where and how log lines go: the `--log-*` settings.
#[derive(Clone, Debug, Default)]
pub struct LogSettings {
    /// Line format.
    pub format: LogFormat,
    /// File instead of stderr.
    pub file: Option<std::path::PathBuf>,
    /// Rotation of `file`.
    pub rotation: LogRotation,
    /// Rotated files kept (0: all).
    pub max_files: usize,
}

/// Installs the global tracing subscriber: lines in `settings.format`, to
/// stderr or to the (rotated) log file, level from `MAGPIE_LOG` (default
/// `info`, e.g. `MAGPIE_LOG=warn,magpie::http=info`). File lines are written
/// by a background thread; keep the returned guard until exit so the last
/// lines are flushed.
pub fn init(
    settings: &LogSettings,
) -> std::io::Result<Option<tracing_appender::non_blocking::WorkerGuard>> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAGPIE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let Some(path) = &settings.file else {
        let builder = builder.with_writer(std::io::stderr);
        match settings.format {
            LogFormat::Logfmt => builder.event_format(Logfmt).init(),
            LogFormat::Json => builder.json().flatten_event(true).init(),
        }
        return Ok(None);
    };
    use tracing_appender::rolling::{RollingFileAppender, Rotation};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    // the appender would create missing directories; a typo in the path
    // should stop the start instead, as Redis's `logfile` does
    if !dir.is_dir() {
        return Err(std::io::Error::other(format!(
            "cannot open log file {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "magpie.log".into());
    let mut appender = RollingFileAppender::builder()
        .rotation(match settings.rotation {
            LogRotation::Never => Rotation::NEVER,
            LogRotation::Hourly => Rotation::HOURLY,
            LogRotation::Daily => Rotation::DAILY,
        })
        .filename_prefix(name);
    if settings.max_files > 0 {
        appender = appender.max_log_files(settings.max_files);
    }
    let appender = appender.build(dir).map_err(|e| {
        std::io::Error::other(format!("cannot open log file {}: {e}", path.display()))
    })?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    let builder = builder.with_writer(writer).with_ansi(false);
    match settings.format {
        LogFormat::Logfmt => builder.event_format(Logfmt).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(Some(guard))
}

/// A tracing event formatter producing logfmt: `time`, `level`, `msg` (when
/// the event has a message), the event's fields in order, then `target`.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(160);
        line.push_str("time=");
        rfc3339_utc(SystemTime::now(), &mut line);
        line.push_str(" level=");
        line.push_str(&event.metadata().level().as_str().to_ascii_lowercase());
        event.record(&mut LogfmtFields(&mut line));
        line.push_str(" target=");
        push_value(&mut line, event.metadata().target());
        writeln!(writer, "{line}")
    }
}

struct LogfmtFields<'a>(&'a mut String);

impl LogfmtFields<'_> {
    fn pair(&mut self, field: &Field, value: &str) {
        let name = match field.name() {
            "message" => "msg",
            n => n,
        };
        self.0.push(' ');
        self.0.push_str(name);
        self.0.push('=');
        push_value(self.0, value);
    }
}

impl Visit for LogfmtFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.pair(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pair(field, itoa::Buffer::new().format(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pair(field, itoa::Buffer::new().format(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.pair(field, &format!("{value:?}"));
    }
}

/// Appends `value` as a logfmt value: bare when it is non-empty and has no
/// space, `=`, `"`, `\` or control character; otherwise double-quoted with
/// `\"`, `\\`, `\n`, `\r`, `\t` and `\u{..}` escapes.
pub fn push_value(out: &mut String, value: &str) {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c > ' ' && c != '=' && c != '"' && c != '\\' && !c.is_control());
    if bare {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
pub fn rfc3339_utc(t: SystemTime, out: &mut String) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_values_are_quoted_when_needed() {
        let mut s = String::new();
        push_value(&mut s, "/v1/keys/a");
        assert_eq!(s, "/v1/keys/a");
        for (raw, want) in [
            ("", "\"\""),
            ("a b", "\"a b\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("a\\b", "\"a\\\\b\""),
            ("l1\nl2", "\"l1\\nl2\""),
            ("\u{1}", "\"\\u0001\""),
        ] {
            let mut s = String::new();
            push_value(&mut s, raw);
            assert_eq!(s, want, "{raw:?}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let mut s = String::new();
        rfc3339_utc(UNIX_EPOCH, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        let mut s = String::new();
        // 2024-02-29T23:59:58.5Z, a leap day
        rfc3339_utc(
            UNIX_EPOCH + std::time::Duration::from_millis(1_709_251_198_500),
            &mut s,
        );
        assert_eq!(s, "2024-02-29T23:59:58.500000Z");
        let mut s = String::new();
        rfc3339_utc(
            UNIX_EPOCH + std::time::Duration::from_secs(4_102_444_800),
            &mut s,
        );
        assert_eq!(s, "2100-01-01T00:00:00.000000Z");
    }
}
