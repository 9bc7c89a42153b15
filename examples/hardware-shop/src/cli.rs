//! The command line: `hardware-shop [--buyers N]`, parsed with `std::env::args`.

/// How many buyers race when `--buyers` is not given.
pub const DEFAULT_BUYERS: usize = 20;

/// The most buyers `--buyers` accepts.
pub const MAX_BUYERS: usize = 10_000;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the example with this many racing buyers.
    Run {
        /// How many buyers race for the last RTX 3090.
        buyers: usize,
    },
    /// Print the help and exit successfully.
    Help,
}

/// Reads the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut buyers = DEFAULT_BUYERS;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--buyers" => {
                let value = args
                    .next()
                    .ok_or_else(|| "`--buyers` needs a number, as in `--buyers 50`".to_owned())?;
                buyers = parse_buyers(&value)?;
            }
            _ => match arg.strip_prefix("--buyers=") {
                Some(value) => buyers = parse_buyers(value)?,
                None => return Err(format!("unknown argument `{arg}`")),
            },
        }
    }
    Ok(Command::Run { buyers })
}

fn parse_buyers(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_BUYERS).contains(n))
        .ok_or_else(|| {
            format!("`--buyers` must be a whole number from 1 to {MAX_BUYERS}, not `{value}`")
        })
}

/// The one-line usage, printed after a command-line error.
pub const USAGE: &str = "Usage: hardware-shop [--buyers N]   (try --help)";

/// The `--help` text.
pub fn help() -> String {
    format!(
        "\
hardware-shop: a one-of-a-kind used-hardware shop, on commerce-core's test
gateway. It races buyers for the last unit of a GPU, takes a payment whose
webhook arrives twice, lets a reservation expire, and shows what happens to a
payment that arrives too late.

Usage: hardware-shop [--buyers N]
       cargo run -p hardware-shop -- --buyers 50

Options:
  --buyers N   how many buyers race for the last RTX 3090
               (default {DEFAULT_BUYERS}, from 1 to {MAX_BUYERS})
  -h, --help   print this help

Environment:
  DATABASE_URL   unset: the in-memory store. Set: PostgreSQL as this login
                 (an administrator is switched to commerce_app in every
                 transaction; add pgbouncer=true behind PgBouncer). Each run
                 is a new tenant, gpu-exchange-<8 hex digits>, so runs never
                 meet each other's data.
  MIGRATION_DATABASE_URL
                 the owner's direct URL the migrations run with first
                 (idempotent); default: DATABASE_URL

Exit status: 0 when every expectation held, 1 when one did not (or the
store failed), 2 when the command line is wrong."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn parses() {
        assert_eq!(run(&[]), Ok(Command::Run { buyers: 20 }));
        assert_eq!(run(&["--buyers", "50"]), Ok(Command::Run { buyers: 50 }));
        assert_eq!(run(&["--buyers=3"]), Ok(Command::Run { buyers: 3 }));
        assert_eq!(run(&["--buyers", "5", "--help"]), Ok(Command::Help));
        for bad in [
            &["--buyers"][..],
            &["--buyers", "0"],
            &["--buyers", "-3"],
            &["--buyers", "many"],
            &["--buyers", "10001"],
            &["--buyers="],
            &["--sellers", "2"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
