//! `mqtt-sn-gateway`: the MQTT-SN gateway daemon.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use gateway::cli::{Cli, Command};
use gateway::io::notify;
use sn_config::output::print;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.action() {
        Command::CheckConfig => check_config(&cli),
        Command::Run => run(&cli),
        Command::Pair { duration } => pair(&cli, &duration),
        Command::Clients => clients(&cli),
        Command::Unpair { client_id } => unpair(&cli, &client_id),
    }
}

/// The HTTP address of the running gateway for `pair` and `clients`, or the exit code.
fn admin_addr(cli: &Cli) -> Result<std::net::SocketAddr, ExitCode> {
    match cli.admin_addr() {
        Ok(Some(addr)) => {
            // Which gateway this is, on stderr so that the output stays the answer alone.
            eprintln!(
                "gateway at http://{addr} (configuration {})",
                cli.admin_config_name()
            );
            Ok(addr)
        }
        Ok(None) => {
            eprintln!(
                "error: the gateway's HTTP endpoint is off in {} ([http] listen = \"off\" or \
                 --http off); `pair` and `clients` talk to the running gateway through it. Turn \
                 it on, or pass the address it listens on with --http ADDR:PORT",
                cli.admin_config_name()
            );
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Runs `f` on a small current-thread runtime.
fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt.block_on(f)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// `pair --for DURATION`: open the pairing window of the running gateway.
fn pair(cli: &Cli, duration: &str) -> ExitCode {
    let duration = match gateway::cli::pairing_duration(duration) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = match admin_addr(cli) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match block_on(gateway::admin_client::open_pairing(addr, duration)) {
        Ok(Ok(p)) => {
            match p.registry {
                Some(path) => print(format_args!(
                    "pairing open for {} s; motes that connect now are added to {path}\n",
                    p.seconds
                )),
                None => print(format_args!(
                    "pairing open for {} s; motes that connect now are let in (no registry \
                     file is configured, so they are not saved)\n",
                    p.seconds
                )),
            }
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(code) => code,
    }
}

/// `clients`: print the motes the running gateway knows.
fn clients(cli: &Cli) -> ExitCode {
    let addr = match admin_addr(cli) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match block_on(gateway::admin_client::clients(addr)) {
        Ok(Ok(list)) => {
            print(gateway::admin_client::format_clients(&list));
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
        Err(code) => code,
    }
}

/// `unpair CLIENT_ID`: remove a mote from the registry file the daemon reads (exit 1 when it
/// is not there), and tell the operator to reload the running gateway.
fn unpair(cli: &Cli, client_id: &str) -> ExitCode {
    let settings = match cli.admin_settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let path = settings.registry.path;
    // Messages name the file as the operator finds it from anywhere.
    let path = std::path::absolute(&path).unwrap_or(path);
    match gateway::config::registry::remove_client(&path, client_id) {
        Ok(unpaired) => {
            let mut out = format!("removed {client_id:?} from {}\n", path.display());
            if unpaired.remaining == 0 {
                out.push_str(
                    "no client is left; the file now says allow_empty = true, so the reload \
                     empties the gateway's registry\n",
                );
            }
            out.push_str(
                "reload the running gateway to apply it: systemctl reload mqtt-sn-gateway (or \
                 send it SIGHUP); the mote's next CONNECT is then refused (a session it has open \
                 stays until it disconnects)\n",
            );
            print(out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// `check-config`: print the effective configuration (exit 0) or the error (exit 2).
fn check_config(cli: &Cli) -> ExitCode {
    sn_config::output::check_config(&cli.settings(), &source(cli))
}

fn source(cli: &Cli) -> String {
    cli.config_file().map_or_else(
        || "built-in config/gateway.toml".to_owned(),
        |p| p.display().to_string(),
    )
}

/// `run`: start the gateway; stop gracefully on SIGINT or SIGTERM.
fn run(cli: &Cli) -> ExitCode {
    let mut settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    resolve_storage(cli, &mut settings.io.storage);
    // The embedded broker (rumqttd) logs every connection at info and ordinary disconnects,
    // the gateway's own readiness probe among them, as errors: off unless `--log` names it.
    if let Err(e) = sn_config::logging::init_quiet(&cli.log, cli.log_format, &["rumqttd"]) {
        eprintln!("error: {e}");
        return ExitCode::from(e.exit_code());
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        if let Err(e) = sn_config::shutdown::cancel_on_signal(shutdown.clone(), notify::stopping) {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
        tracing::info!(config = %source(cli), version = env!("CARGO_PKG_VERSION"), "starting");
        // Before the gateway opens its sockets (one per upstream connection in transparent mode).
        gateway::io::fd_limit::prepare(&settings.core, &settings.io);
        let running = match gateway::io::start(settings.core, settings.io, shutdown).await {
            Ok(running) => running,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let addrs: Vec<String> = running.addrs.iter().map(ToString::to_string).collect();
        for addr in &addrs {
            tracing::info!(%addr, "listening for MQTT-SN over UDP");
        }
        notify::ready(&format!("listening on {}", addrs.join(", ")));
        tokio::spawn(reload_on_hangup(cli.clone(), running.handle.clone()));
        running.wait().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Where the state database goes when `[storage] path` is not set: `$STATE_DIRECTORY` (set by
/// systemd's `StateDirectory=`; the first of several), else beside the configuration file, else
/// (the compiled-in configuration) nowhere.
fn resolve_storage(cli: &Cli, storage: &mut gateway::io::store::StorageConfig) {
    use gateway::io::store::StorageLocation;
    let state_directory = std::env::var_os("STATE_DIRECTORY").and_then(|dirs| {
        std::env::split_paths(&dirs)
            .next()
            .filter(|d| !d.as_os_str().is_empty())
    });
    storage.location = match storage
        .location
        .resolve(cli.config_file().as_deref(), state_directory.as_deref())
    {
        Some(path) => StorageLocation::Path(path),
        None => StorageLocation::Off,
    };
}

/// SIGHUP: read the configuration again and replace the client registry and predefined
/// topics without dropping sessions. A broken file is reported and the running settings stay;
/// so does a registry file that is missing or lists no client while the running registry has
/// clients, unless the file says `allow_empty = true`.
async fn reload_on_hangup(cli: Cli, handle: gateway::io::GatewayHandle) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            notify::reloading();
            let mut status = "reloaded";
            match cli.settings() {
                Ok(settings) => {
                    // Only a registry file without clients can be refused: ask the gateway
                    // what it runs with only then.
                    let running = if settings.registry.clients == 0 {
                        match handle.status().await {
                            Some(s) => s.registered_clients,
                            None => return,
                        }
                    } else {
                        0
                    };
                    match settings.registry.check_reload(running) {
                        Ok(()) => {
                            if !handle.reload(settings.core).await {
                                return;
                            }
                        }
                        Err(refused) => {
                            tracing::error!("{refused}");
                            status = "reload refused: the registry file lists no client";
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "reload failed; keeping the running settings");
                    status = "reload failed; see the log";
                }
            }
            notify::ready(status);
        }
    }
    #[cfg(not(unix))]
    let _ = (cli, handle);
}
