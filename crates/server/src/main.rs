//! The `magpie` binary: `magpie serve` runs the server, `magpie cli` is a
//! redis-cli work-alike and `magpie bench` a memtier-style load generator.

use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use magpie::config::file::{self as config_file, ConfigArgs, ServeArgs};
use magpie::config::ServeConfig;
use magpie::shared::Shared;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc settings: a background thread returns freed pages (such as a
/// hash table left behind when it doubles) to the OS within a second instead
/// of keeping them resident; measured at ~10 bytes per key at 1M keys.
/// `MALLOC_CONF`-style overrides still work through `_RJEM_MALLOC_CONF`.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

#[derive(Parser)]
#[command(
    name = "magpie",
    version,
    about = "A key-value server with Redis, memcached and HTTP front doors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Print the effective configuration (flags, environment, config file
    /// and defaults merged) as TOML, each line saying where it came from.
    Config(Box<ConfigArgs>),
    /// Verify a data directory offline and print what it holds.
    Check {
        /// The data directory (as given to `serve --dir`).
        dir: std::path::PathBuf,
    },
    /// A redis-cli style client (memcached text with --memcache).
    #[command(disable_help_flag = true)]
    Cli(Box<magpie_tools::cli::CliArgs>),
    /// A memtier_benchmark style load generator.
    Bench(Box<magpie_tools::bench::BenchArgs>),
}

fn main() {
    // parsed by hand (not `Cli::parse`) to keep the matches, which say
    // whether each setting came from a flag, the environment or a default
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = matches.subcommand().map(|(_, m)| m).expect("subcommand");
    match cli.command {
        Command::Serve(args) => {
            let config = resolve_or_exit(sub, args.config.as_deref()).config;
            if let Err(e) = config.validate() {
                eprintln!("magpie: {e}");
                std::process::exit(2);
            }
            if let Err(e) = serve(config) {
                eprintln!("magpie: {e}");
                std::process::exit(1);
            }
        }
        Command::Config(args) => {
            let resolved = resolve_or_exit(sub, args.config.as_deref());
            print!(
                "{}",
                config_file::render(&resolved.settings, args.show_secrets)
            );
            if let Err(e) = resolved.config.validate() {
                eprintln!("magpie: {e}");
                std::process::exit(2);
            }
        }
        Command::Check { dir } => match magpie_persist::check(&dir) {
            Ok(report) => println!("{report}"),
            Err(e) => {
                eprintln!("magpie check: {e}");
                std::process::exit(1);
            }
        },
        Command::Cli(args) => std::process::exit(magpie_tools::cli::run(*args)),
        Command::Bench(args) => std::process::exit(magpie_tools::bench::run(*args)),
    }
}

/// Merges the config file into flags and environment; a bad file stops
/// the start with exit code 2, as a bad flag does.
fn resolve_or_exit(
    matches: &clap::ArgMatches,
    file: Option<&std::path::Path>,
) -> config_file::Resolved {
    config_file::resolve(matches, file).unwrap_or_else(|e| {
        eprintln!("magpie: {e}");
        std::process::exit(2);
    })
}

fn serve(config: ServeConfig) -> std::io::Result<()> {
    let _log_guard = magpie::logging::init(&magpie::logging::LogSettings {
        format: config.log_format,
        file: config.log_file.clone(),
        rotation: config.log_rotation,
        max_files: config.log_max_files,
    })?;
    let workers = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // tells the log thread when the runtime runs out of work (see
    // magpie_persist::RuntimeActivity)
    let activity = magpie_persist::RuntimeActivity::new(workers.max(1));
    let (on_park, on_unpark) = (activity.clone(), activity.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .on_thread_park(move || on_park.parked())
        .on_thread_unpark(move || on_unpark.unparked())
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let shared = Shared::new(config, magpie::command_names());
        let _ = shared.runtime_activity.set(activity);
        magpie::start(shared.clone()).await?;
        wait_for_signal(&shared).await;
        shared.request_shutdown();
        // let connections finish the batch they are on
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(p) = shared.persist.get() {
            // write and fsync whatever is queued, release the directory
            p.shutdown();
        }
        tracing::info!("magpie stopped");
        Ok::<_, std::io::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn wait_for_signal(shared: &Arc<Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hangup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    let stopped = shared.shutdown.notified();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT received, shutting down");
                return;
            }
            _ = term.recv() => {
                tracing::info!("SIGTERM received, shutting down");
                return;
            }
            _ = &mut stopped => {
                tracing::info!("SHUTDOWN requested");
                return;
            }
            _ = hangup.recv() => reload_tls(shared),
        }
    }
}

/// SIGHUP: reread the TLS certificate, key and CA files, so a rotated
/// certificate is served to new connections without a restart; files that
/// do not load leave the old ones in force.
fn reload_tls(shared: &Shared) {
    if !shared.tls.active() {
        tracing::info!("SIGHUP received; no TLS port, nothing to reload");
        return;
    }
    match shared.tls.reload() {
        Ok(()) => tracing::info!("SIGHUP received, TLS certificates reloaded"),
        Err(e) => {
            tracing::warn!(error = %e, "SIGHUP received, TLS certificates NOT reloaded (the old ones stay)")
        }
    }
}
