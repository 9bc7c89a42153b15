//! `load`: an HTTP load client of a running shop that serves
//! commerce-http's storefront and admin API (the hardware shop, say).
//!
//! ```text
//! cargo run --release -p commerce-benches --bin load -- race --url http://127.0.0.1:3100 --admin-key-file shop.out
//! cargo run --release -p commerce-benches --bin load -- mixed --url http://127.0.0.1:3100 --admin-key KEY
//! ```
//!
//! `race` puts N buyers, each on its own connection with its own cart, on
//! one unit at once and checks that exactly one wins and exactly one order
//! follows; `mixed` runs a closed loop of browse, reserve and checkout
//! flows for a while and reports requests per second and latency
//! percentiles by operation. `--help` says more; `benches/README.md`
//! holds the figures.

mod api;
mod args;
mod http;
mod mixed;
mod race;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;

use crate::api::{Api, SetupError};
use crate::args::{Command, Common, KeySource};
use crate::http::Target;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let command = match args::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let outcome = match &command {
        Command::Help => {
            println!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Race(options) => match prepare(&options.common) {
            Ok((target, api)) => race::run(options, target, api).await,
            Err(error) => Err(error),
        },
        Command::Mixed(options) => match prepare(&options.common) {
            Ok((target, api)) => mixed::run(options, target, api).await,
            Err(error) => Err(error),
        },
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("setup error: {error}");
            ExitCode::from(2)
        }
    }
}

/// The target and the API from the common options (reading the key file).
fn prepare(common: &Common) -> Result<(Arc<Target>, Arc<Api>), SetupError> {
    let target = Target::parse(&common.url)?;
    let key = match &common.admin_key {
        KeySource::Literal(key) => key.clone(),
        KeySource::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SetupError(format!("cannot read {}: {e}", path.display())))?;
            args::key_from_text(&text).ok_or_else(|| {
                SetupError(format!(
                    "no admin key in {}: neither a line `admin API key (...): KEY` nor a lone key",
                    path.display()
                ))
            })?
        }
    };
    let api = Api {
        storefront: common.storefront_prefix.clone(),
        admin: common.admin_prefix.clone(),
        key,
        currency: common.currency.clone(),
    };
    Ok((Arc::new(target), Arc::new(api)))
}
