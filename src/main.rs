use clap::Parser;

// glibc malloc took about a quarter of the worker's and the gateway's CPU under load
// (perf, see BENCHMARKS.md); mimalloc's thread-local free lists cost a fraction of it.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    payfleet::cli::Cli::parse().run().await
}
