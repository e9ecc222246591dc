//! `payfleet sandbox|demo|bench|chaos`: commands that drive a fleet rather than run in
//! one. They live in their own binaries (`payfleet-sim`, `payfleet-tools`) so that the
//! production binary links neither the simulator nor the tools; this hands the command
//! line over to the one installed beside it, as git does with its subcommands.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const TOOLS: [&str; 3] = ["demo", "bench", "chaos"];

pub fn exec(config: Option<&Path>, args: &[OsString]) -> ExitCode {
    let Some(name) = args.first().and_then(|a| a.to_str()) else {
        eprintln!("payfleet: a subcommand is needed (see payfleet --help)");
        return ExitCode::from(2);
    };
    let (binary, rest) = match name {
        "sandbox" => ("payfleet-sim", &args[1..]),
        n if TOOLS.contains(&n) => ("payfleet-tools", args),
        other => {
            eprintln!("payfleet: unknown subcommand `{other}` (see payfleet --help)");
            return ExitCode::from(2);
        }
    };
    let Some(path) = beside_this(binary) else {
        eprintln!(
            "payfleet: `payfleet {name}` runs the {binary} binary, which is not installed beside \
             this one (build it with `cargo build --workspace --bins`)"
        );
        return ExitCode::from(2);
    };
    let mut cmd = std::process::Command::new(path);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    // exec only returns on failure.
    let err = cmd.args(rest).exec();
    eprintln!("payfleet: running {binary}: {err}");
    ExitCode::FAILURE
}

fn beside_this(binary: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(binary);
    path.is_file().then_some(path)
}
