//! Arguments the operator commands share: `--json`, and an operator's `--by` and
//! `--reason`.

use serde::Serialize;

/// `--json`: one JSON document, for scripts, instead of what a person reads.
#[derive(clap::Args, Clone, Copy)]
pub struct Format {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
}

impl Format {
    /// Prints `value` as JSON, or as `readable` prints it.
    pub fn print<T: Serialize + ?Sized>(
        self,
        value: &T,
        readable: impl FnOnce(&T),
    ) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            readable(value);
        }
        Ok(())
    }
}

/// Who acts and why: kept with what the action changes and in its `operator.*` event
/// (neither may be empty or look like a card number).
#[derive(clap::Args)]
pub struct Signed {
    /// Why (kept with what it changes, and in its operator event).
    #[arg(long)]
    pub reason: String,
    /// Who acts (named in its operator event).
    #[arg(long)]
    pub by: String,
}
