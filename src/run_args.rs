//! Arguments of the main command (the harness run).

use clap::Args;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run against the built-in simulated hub, started in-process (profile
    /// name or JSON file; default hub-new-firmware).
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, default_missing_value = "hub-new-firmware")]
    pub sim: Option<String>,
}
