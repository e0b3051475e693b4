use clap::Parser;

// glibc's malloc was a fifth of the service's CPU under load (threads contending for arenas,
// consolidating on free); mimalloc keeps per-thread heaps. Measured in README "Benchmark".
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = aap_bridge::cli::Cli::parse();
    match aap_bridge::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aap-bridge: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
