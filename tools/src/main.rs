use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    payfleet_tools::cli::Cli::parse().run().await
}
