//! `magpie serve --config FILE` and `magpie config`: the settings of
//! [`ServeConfig`] read from a TOML file as well as from flags and
//! `MAGPIE_*` environment variables, with one precedence order (highest
//! first): command-line flag, environment variable, config file, built-in
//! default. See docs/config.md.
//!
//! The file's keys are the flags' long names (`port`, `memcache-port`, ...),
//! and its values go through the very same clap value parsers as the flags,
//! so a setting means the same thing wherever it comes from. The winner for
//! each setting is chosen with clap's [`ValueSource`], then one argv holding
//! every winning value is parsed into the final [`ServeConfig`].

use std::any::TypeId;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use crate::config::ServeConfig;

/// `magpie serve` arguments: the optional config file plus every setting.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    /// TOML file with settings (keys are the flag names without `--`);
    /// flags and `MAGPIE_*` variables override it. See docs/config.md.
    #[arg(long, value_name = "FILE", env = "MAGPIE_CONFIG")]
    pub config: Option<PathBuf>,

    /// The settings as given on the command line and in the environment
    /// (before the file is applied; use [`resolve`] for the merged result).
    #[command(flatten)]
    pub settings: ServeConfig,
}

/// `magpie config` arguments: the same as `serve`, plus whether to show
/// secrets in the printed configuration.
#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// TOML file with settings, as for `magpie serve --config`.
    #[arg(long, value_name = "FILE", env = "MAGPIE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print secrets (`requirepass`) instead of `********`.
    #[arg(long)]
    pub show_secrets: bool,

    /// The settings as given on the command line and in the environment.
    #[command(flatten)]
    pub settings: ServeConfig,
}

/// Settings whose values `magpie config` hides unless `--show-secrets`.
pub const SECRET_SETTINGS: &[&str] = &["requirepass"];

/// Where a setting's effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Nothing set it: the built-in default (or unset, for optional ones).
    Default,
    /// The config file.
    File,
    /// The named `MAGPIE_*` environment variable.
    Env(String),
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File => f.write_str("file"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::Flag => f.write_str("flag"),
        }
    }
}

/// One setting's effective value, for `magpie config`.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The key in the file, which is also the flag's long name.
    pub name: String,
    /// The value as TOML; `None` for an optional setting left unset.
    pub value: Option<toml::Value>,
    /// Who set it.
    pub source: Source,
}

/// The merged configuration and, per setting, its value and origin.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// What the server runs with.
    pub config: ServeConfig,
    /// Every setting in declaration order (the order of `serve --help`).
    pub settings: Vec<Setting>,
}

/// The settings as a clap command of their own, without environment
/// variables: used to parse file values and the merged argv, where the
/// environment has already been accounted for.
pub fn settings_command() -> Command {
    ServeConfig::augment_args(Command::new("magpie-settings"))
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .mut_args(|a| a.env(None))
}

/// Merges flags and environment (`matches`, from parsing `serve` or
/// `config`) with the config `file`, if any. The error names the file and
/// the setting, ready to print after `magpie: `.
pub fn resolve(matches: &ArgMatches, file: Option<&Path>) -> Result<Resolved, String> {
    let cmd = settings_command();
    let table = match file {
        Some(path) => load(path).map_err(|e| format!("{}: {e}", path.display()))?,
        None => toml::Table::new(),
    };
    // every key must name a setting and hold a good value, even where a
    // flag or variable overrides it: a broken file is an error on its own
    let mut file_words = BTreeMap::new();
    if let Some(path) = file {
        let path = path.display();
        for (key, value) in &table {
            let arg =
                find_arg(&cmd, key).ok_or_else(|| format!("{path}: unknown setting '{key}'"))?;
            let word =
                file_word(arg, value).map_err(|e| format!("{path}: bad value for '{key}': {e}"))?;
            if let Some(word) = &word {
                // parse it alone, so the error names this key
                cmd.clone()
                    .try_get_matches_from([word])
                    .map_err(|e| format!("{path}: bad value for '{key}': {}", reason(&e)))?;
            }
            file_words.insert(key.as_str(), word);
        }
    }

    let mut argv: Vec<OsString> = Vec::new();
    let mut sources = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let long = arg.get_long().expect("every setting has a long flag");
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env(env_name(id)),
            _ if file_words.contains_key(long) => Source::File,
            _ => Source::Default,
        };
        match source {
            Source::Flag | Source::Env(_) => {
                if is_switch(arg) {
                    if matches.get_flag(id) {
                        argv.push(format!("--{long}").into());
                    }
                } else {
                    for raw in matches.get_raw(id).into_iter().flatten() {
                        argv.push(long_eq(long, raw.to_owned()));
                    }
                }
            }
            Source::File => argv.extend(file_words[long].clone()),
            Source::Default => {}
        }
        sources.push((arg.clone(), source));
    }

    let merged = cmd
        .try_get_matches_from(&argv)
        .map_err(|e| format!("settings: {}", reason(&e)))?;
    let config = ServeConfig::from_arg_matches(&merged).map_err(|e| reason(&e))?;
    let settings = sources
        .into_iter()
        .map(|(arg, source)| Setting {
            name: arg.get_long().unwrap_or_default().to_string(),
            value: effective_value(&arg, &merged),
            source,
        })
        .collect();
    Ok(Resolved { config, settings })
}

/// Reads and parses the file into a table.
fn load(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    text.parse::<toml::Table>()
        .map_err(|e| e.to_string().trim_end().to_string())
}

/// The `MAGPIE_*` variable of a setting (the settings command has them
/// stripped).
fn env_name(id: &str) -> String {
    let full = ServeConfig::augment_args(Command::new("magpie-settings"));
    let env = full
        .get_arguments()
        .find(|a| a.get_id() == id)
        .and_then(Arg::get_env);
    env.map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn find_arg<'a>(cmd: &'a Command, long: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| a.get_long() == Some(long))
}

/// A flag that takes no value (`--ephemeral`).
fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

/// What TOML type a setting is written as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Integer,
    Float,
    Text,
}

fn kind(arg: &Arg) -> Kind {
    if is_switch(arg) {
        return Kind::Bool;
    }
    let t = arg.get_value_parser().type_id();
    let integers = [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
    ];
    if integers.iter().any(|i| t == *i) {
        Kind::Integer
    } else if t == TypeId::of::<f64>() {
        Kind::Float
    } else {
        Kind::Text
    }
}

/// `--long=value`: the `=` form keeps a value that starts with `-` a value.
fn long_eq(long: &str, value: OsString) -> OsString {
    let mut word = OsString::from(format!("--{long}="));
    word.push(value);
    word
}

/// The argv word for a file value, or `None` for a switch set to false.
/// Numbers may also be written as strings (for `u64` values beyond TOML's
/// `i64`); everything else must have the setting's own TOML type.
fn file_word(arg: &Arg, value: &toml::Value) -> Result<Option<OsString>, String> {
    let long = arg.get_long().unwrap_or_default();
    let text = match (kind(arg), value) {
        (Kind::Bool, toml::Value::Boolean(true)) => return Ok(Some(format!("--{long}").into())),
        (Kind::Bool, toml::Value::Boolean(false)) => return Ok(None),
        (Kind::Bool, other) => {
            return Err(format!(
                "expected true or false, found {}",
                other.type_str()
            ))
        }
        (Kind::Integer, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Float, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Float, toml::Value::Float(f)) => f.to_string(),
        (Kind::Integer | Kind::Float | Kind::Text, toml::Value::String(s)) => s.clone(),
        (Kind::Integer, other) => {
            return Err(format!("expected an integer, found {}", other.type_str()))
        }
        (Kind::Float, other) => {
            return Err(format!("expected a number, found {}", other.type_str()))
        }
        (Kind::Text, other) => {
            return Err(format!("expected a string, found {}", other.type_str()))
        }
    };
    Ok(Some(long_eq(long, text.into())))
}

/// The part of a clap error that explains the value, without clap's
/// flag syntax and usage hints.
fn reason(e: &clap::Error) -> String {
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => Some(v.clone()),
        _ => None,
    };
    if let Some(source) = std::error::Error::source(e) {
        let source = source.to_string();
        return match value {
            Some(v) if !source.contains(&v) => format!("'{v}': {source}"),
            _ => source,
        };
    }
    if e.kind() == ErrorKind::InvalidValue {
        if let (Some(v), Some(ContextValue::Strings(valid))) =
            (&value, e.get(ContextKind::ValidValue))
        {
            return format!("'{v}' is not one of: {}", valid.join(", "));
        }
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// A setting's final value as TOML, read back from the merged matches.
fn effective_value(arg: &Arg, merged: &ArgMatches) -> Option<toml::Value> {
    let id = arg.get_id().as_str();
    let kind = kind(arg);
    if kind == Kind::Bool {
        return Some(toml::Value::Boolean(merged.get_flag(id)));
    }
    let raw = merged.get_raw(id)?.next()?.to_string_lossy().into_owned();
    Some(match kind {
        // beyond i64 (a huge u64): a string, which the file accepts too
        Kind::Integer => raw
            .parse::<i64>()
            .map_or(toml::Value::String(raw), toml::Value::Integer),
        Kind::Float => raw
            .parse::<f64>()
            .map_or(toml::Value::String(raw), toml::Value::Float),
        _ => toml::Value::String(raw),
    })
}

/// `magpie config` output: every setting as a TOML line with a trailing
/// comment naming its source. Unset optional settings are commented out;
/// secrets show as `********` unless `show_secrets`. The text is itself a
/// config file `magpie serve --config` accepts.
pub fn render(settings: &[Setting], show_secrets: bool) -> String {
    let mut out = String::from(
        "# magpie effective configuration\n\
         # precedence: flag > MAGPIE_* environment variable > config file > default\n\
         # (docs/config.md); each line's comment says where its value came from\n",
    );
    for s in settings {
        let secret = SECRET_SETTINGS.contains(&s.name.as_str());
        match &s.value {
            None => out.push_str(&format!("# {} is unset  # {}\n", s.name, s.source)),
            Some(_) if secret && !show_secrets => out.push_str(&format!(
                "{} = \"********\"  # {}, hidden (--show-secrets prints it)\n",
                s.name, s.source
            )),
            Some(v) => out.push_str(&format!("{} = {v}  # {}\n", s.name, s.source)),
        }
    }
    out
}
