use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    payfleet::cli::Cli::parse().run().await
}
