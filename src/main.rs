use clap::Parser;

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
