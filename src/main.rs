//! The foldertrack binary: parse the command line, start logging and one async runtime, run
//! the command ([`cli`]), and print one line on error.

mod cli;

use std::process::ExitCode;

// Every allocation goes through dhat so that `run` can be profiled; without a running
// profiler it only forwards to the system allocator.
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse_args();
    // Only the agent is profiled: `bench e2e` runs it as a child in the same directory, and the
    // harness must neither overwrite its dhat-heap.json nor slow down beside it. The file is
    // written when the profiler drops, at the end of a clean stop (SIGTERM or Ctrl-C).
    #[cfg(feature = "dhat-heap")]
    let _profiler = matches!(args.command, cli::Command::Run).then(dhat::Profiler::new_heap);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_malloc();
    foldertrack::telemetry::init(args.log_format, args.verbose, args.quiet_logs());
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            let result = runtime.block_on(cli::run(args));
            // A blocking call that never returns (a flush on a failed disk) must not hold the
            // exit: the work is done or durable, so give stragglers a moment, then go.
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
            result
        });
    match result {
        Ok(code) => code,
        // A closed pipe (`foldertrack … | head`) is the reader's choice, not a failure.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc gives each thread that allocates while the others hold theirs an arena of its
/// own, up to 8 per core, and an arena keeps what was freed in it: the agent's blocking threads
/// (sled's commits run there) took 16 arenas, which held about half of its resident memory. One
/// arena per core keeps the heap near what is in use. And glibc raises its mmap threshold after
/// freeing a large block, so later large buffers (a `/status` of 10,000 mailboxes is 10–16 MiB
/// of JSON) come from the heap and leave holes in it: a fixed threshold at glibc's initial
/// 128 KiB maps and unmaps them every time (docs/benchmarks.md, "Where the memory goes").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt only sets malloc tunables, and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
