//! Tools beside the agent: the JSON schemas, saved EWS documents, and — with the `sim`
//! feature — the simulator, the demo and the end-to-end benchmark.

use super::render::print_line;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `foldertrack schema [--write]`: the generated schemas, printed or written into schemas/.
pub fn schema(write: bool) -> Result<ExitCode> {
    for (file, text) in foldertrack::schemas() {
        if write {
            let path = Path::new("schemas").join(file);
            std::fs::create_dir_all("schemas").context("schemas: cannot create the folder")?;
            std::fs::write(&path, text)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            print_line(&format!("wrote {}", path.display()))?;
        } else {
            print_line(&text)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `foldertrack ews decode FILE…`: what foldertrack understands of each, as JSON.
pub fn decode(files: &[PathBuf]) -> Result<ExitCode> {
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}: cannot read", file.display()))?;
        let value = foldertrack::ews::decode::decode(&text)
            .with_context(|| format!("{}", file.display()))?;
        print_line(&serde_json::to_string_pretty(&value)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `foldertrack ews requests --out DIR`: one example of every request foldertrack builds.
pub fn requests(out: &Path) -> Result<ExitCode> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the folder", out.display()))?;
    for (name, xml) in foldertrack::ews::examples::requests() {
        let path = out.join(name);
        std::fs::write(&path, xml).with_context(|| format!("{}: cannot write", path.display()))?;
        print_line(&path.display().to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `foldertrack sim`: the simulator on loopback until Ctrl-C.
#[cfg(feature = "sim")]
pub async fn sim(listen: std::net::SocketAddr, persist: Option<PathBuf>) -> Result<ExitCode> {
    let options = foldertrack::sim::SimOptions {
        persist,
        ..Default::default()
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let served = foldertrack::sim::serve_until(options, listen, shutdown)
        .await
        .with_context(|| format!("{listen}: cannot start the simulator"))?;
    print_line(&format!("EWS:     {}", served.ews_url))?;
    print_line(&format!("Graph:   {}", served.graph_url))?;
    print_line(&format!("token:   {}", served.token_url))?;
    print_line(&format!("control: {}", served.control_url))?;
    print_line("serving until Ctrl-C; `foldertrack sim --help` lists the control API")?;
    served.done.notified().await;
    Ok(ExitCode::SUCCESS)
}

/// `--api`, which clap already limited to `ews` and `graph`.
#[cfg(feature = "sim")]
fn parse_api(api: &str) -> foldertrack::config::Api {
    match api {
        "graph" => foldertrack::config::Api::Graph,
        _ => foldertrack::config::Api::Ews,
    }
}

/// `foldertrack demo [--keep] [--api ews|graph]`: the agent against a scripted office in the
/// simulator.
#[cfg(feature = "sim")]
pub async fn demo(keep: bool, api: &str) -> Result<ExitCode> {
    let api = parse_api(api);
    let dir = std::env::temp_dir().join(format!("foldertrack-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let stop = tokio_util::sync::CancellationToken::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    let summary = foldertrack::harness::demo::run(&dir, api, keep, stop, |line| {
        let _ = print_line(&line);
    })
    .await?;
    print_line(&format!(
        "summary: moved in {}, tracked {}, re-linked {}, duplicates {}, failures {}, calls to Exchange {} ({} answered busy), {:.0} s",
        summary.moved_in,
        summary.tracked,
        summary.relinked,
        summary.duplicates,
        summary.failures,
        summary.calls,
        summary.throttled,
        summary.seconds
    ))?;
    print_line(&format!("tracking requests: {}", summary.output.display()))?;
    Ok(if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `foldertrack bench e2e`: the agent as a child process against the simulator.
#[cfg(feature = "sim")]
pub async fn bench(command: super::BenchCommand) -> Result<ExitCode> {
    let super::BenchCommand::E2e {
        preset,
        mailboxes,
        folders,
        duration,
        rate,
        idle,
        track_now,
        polling,
        pull,
        chaos_every,
        rounds,
        api,
        json,
    } = command
    else {
        return soak(command).await;
    };
    let mut o = foldertrack::harness::bench::Options::preset(&preset).with_context(|| {
        format!("--preset {preset:?}: choose small, office, enterprise, huge or burst")
    })?;
    o.mailboxes = mailboxes.unwrap_or(o.mailboxes).max(1);
    o.folders = folders.unwrap_or(o.folders).max(1);
    o.duration = duration.unwrap_or(o.duration);
    o.rate = rate.unwrap_or(o.rate).max(0.01);
    o.idle = idle.unwrap_or(o.idle);
    if rounds.is_some() && o.burst.is_none() {
        anyhow::bail!("--rounds applies to --preset burst only");
    }
    o.track_now |= track_now;
    use foldertrack::config::NotificationMode;
    if polling {
        o.notifications = NotificationMode::Off;
    } else if pull {
        o.notifications = NotificationMode::Pull;
    }
    o.api = parse_api(&api);
    if let Some(every) = chaos_every {
        if o.notifications != NotificationMode::Streaming
            || o.api != foldertrack::config::Api::Ews
            || o.burst.is_some()
        {
            anyhow::bail!(
                "--chaos-every needs EWS streaming notifications and a dragging preset (not --polling, --pull, --api graph or burst)"
            );
        }
        o.chaos_every = Some(every.max(0.1));
    }
    if let (Some(b), Some(n)) = (o.burst.as_mut(), rounds) {
        b.rounds = n.max(1);
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let agent = std::env::current_exe().context("cannot find this program's path")?;
    let report = foldertrack::harness::bench::e2e(o, &agent, command, |line| {
        eprintln!("{line}");
    })
    .await?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = json {
        std::fs::write(&path, &text)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    print_line(&text)?;
    eprint!("{}", foldertrack::harness::bench::table(&report));
    Ok(if report.lost == 0 && report.duplicated == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `foldertrack bench soak`: the agent under trouble for a long time.
#[cfg(feature = "sim")]
async fn soak(command: super::BenchCommand) -> Result<ExitCode> {
    let super::BenchCommand::Soak(args) = command else {
        anyhow::bail!("not a soak command");
    };
    let o = foldertrack::harness::soak::Options {
        seconds: args.seconds.unwrap_or(args.minutes * 60).max(1),
        mailboxes: args.mailboxes.max(1),
        rate: args.rate.max(0.01),
        chaos_every: args.chaos_every.max(0.5),
        disk_full: !args.no_disk_full,
        settle: args.settle,
        ..Default::default()
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let agent = std::env::current_exe().context("cannot find this program's path")?;
    let report = foldertrack::harness::soak::soak(o, &agent, command, |line| {
        eprintln!("{line}");
    })
    .await?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(path) = args.json {
        std::fs::write(&path, &text)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    print_line(&text)?;
    eprint!("{}", foldertrack::harness::soak::table(&report));
    Ok(
        if report.lost == 0 && report.duplicated == 0 && report.bad_signatures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}
