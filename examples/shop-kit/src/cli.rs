//! The command line every example shop shares, parsed with
//! `std::env::args`:
//!
//! ```text
//! SHOP [--port N] [--seed N] [--manual-clock]   serve the shop
//! SHOP --demo [ARGS...]                         run the scripted scenario
//! SHOP seed [--seed N]                          load the seed catalog, exit
//! SHOP reconcile [--repair]                     check stock counters
//! SHOP check                                    check the PostgreSQL deployment
//! ```

/// The seed of the generated catalog when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 2026;

/// How to serve the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serve {
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The seed of the generated catalog: the same seed, the same shop.
    pub seed: u64,
    /// The engine's clock is a manual one, moved forward from the page at
    /// `/dev/clock`, so a 15-minute hold can lapse in a test.
    pub manual_clock: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve the web shop.
    Serve(Serve),
    /// Run the shop's scripted scenario with these arguments and exit.
    Demo(Vec<String>),
    /// Load the seed catalog into the store and exit.
    Seed {
        /// The seed of the generated catalog.
        seed: u64,
    },
    /// Check the stock counters against holds and orders, and exit.
    Reconcile {
        /// Repair the drift found.
        repair: bool,
    },
    /// Check the PostgreSQL deployment (`DATABASE_URL`) and exit.
    Check,
    /// Print the help and exit.
    Help,
}

/// Reads the arguments after the program name; `default_port` is the
/// shop's own port when `--port` is not given.
pub fn parse(args: impl IntoIterator<Item = String>, default_port: u16) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    match args.peek().map(String::as_str) {
        Some("--demo") => {
            args.next();
            if args.peek().is_some_and(|a| a == "-h" || a == "--help") {
                return Ok(Command::Help);
            }
            return Ok(Command::Demo(args.collect()));
        }
        Some("seed") => {
            args.next();
            let mut seed = DEFAULT_SEED;
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--seed" => seed = number(&arg, args.next())?,
                    "-h" | "--help" => return Ok(Command::Help),
                    _ => return Err(format!("unknown argument `{arg}` to `seed`")),
                }
            }
            return Ok(Command::Seed { seed });
        }
        Some("reconcile") => {
            args.next();
            let mut repair = false;
            for arg in args {
                match arg.as_str() {
                    "--repair" => repair = true,
                    "-h" | "--help" => return Ok(Command::Help),
                    _ => return Err(format!("unknown argument `{arg}` to `reconcile`")),
                }
            }
            return Ok(Command::Reconcile { repair });
        }
        Some("check") => {
            args.next();
            return match args.next().as_deref() {
                None => Ok(Command::Check),
                Some("-h" | "--help") => Ok(Command::Help),
                Some(arg) => Err(format!("unknown argument `{arg}` to `check`")),
            };
        }
        _ => {}
    }
    let mut serve = Serve {
        port: default_port,
        seed: DEFAULT_SEED,
        manual_clock: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--port" => serve.port = number(&arg, args.next())?,
            "--seed" => serve.seed = number(&arg, args.next())?,
            "--manual-clock" => serve.manual_clock = true,
            "--demo" => return Err("`--demo` comes first, as in `--demo --buyers 20`".to_owned()),
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    Ok(Command::Serve(serve))
}

fn number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("`{flag}` needs a number"))?;
    value
        .parse()
        .map_err(|_| format!("`{flag}` needs a whole number, not `{value}`"))
}

/// The options every shop's `--help` lists.
pub const COMMON_HELP: &str = "\
Serve (the default):
  --port N          listen on 127.0.0.1:N (0: any free port); the URL is printed
  --seed N          seed of the generated catalog (default 2026)
  --manual-clock    the engine's clock only moves when /dev/clock says so

Commands:
  --demo [ARGS]     run the scripted scenario in the terminal; exits 1 when
                    an expectation fails
  seed [--seed N]   load the seed catalog into the store and exit
  reconcile [--repair]
                    compare stock counters with holds and orders; --repair
                    fixes the drift found
  check             check the PostgreSQL deployment (DATABASE_URL): login
                    role, row-level security, grants, migrations, pooler;
                    exits 1 when something needs fixing
  -h, --help        print this help

Environment:
  DATABASE_URL      unset: the in-memory store. Set: PostgreSQL as this
                    login, best a member of commerce_app and nothing more
                    (an administrator is switched to commerce_app in each
                    transaction); add pgbouncer=true behind PgBouncer
  MIGRATION_DATABASE_URL
                    the owner's URL the migrations run with at start
                    (direct, not through a pooler); default: DATABASE_URL
  STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET
                    both set: Stripe Checkout. Unset: the test gateway and
                    the shop's own payment page at /pay
  SHOP_ADMIN_PASSWORD
                    the admin password (default: generated and printed)";

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(|a| (*a).to_owned()), 3000)
    }

    #[test]
    fn serves_by_default() {
        assert_eq!(
            run(&[]),
            Ok(Command::Serve(Serve {
                port: 3000,
                seed: DEFAULT_SEED,
                manual_clock: false
            }))
        );
        assert_eq!(
            run(&["--port", "0", "--seed", "7", "--manual-clock"]),
            Ok(Command::Serve(Serve {
                port: 0,
                seed: 7,
                manual_clock: true
            }))
        );
    }

    #[test]
    fn commands() {
        assert_eq!(
            run(&["--demo", "--buyers", "5"]),
            Ok(Command::Demo(vec!["--buyers".into(), "5".into()]))
        );
        assert_eq!(run(&["seed", "--seed", "9"]), Ok(Command::Seed { seed: 9 }));
        assert_eq!(
            run(&["reconcile", "--repair"]),
            Ok(Command::Reconcile { repair: true })
        );
        assert_eq!(run(&["check"]), Ok(Command::Check));
        assert_eq!(run(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            &["--port"][..],
            &["--port", "http"],
            &["--port", "70000"],
            &["--seed", "-1"],
            &["--buyers", "3"],
            &["--port", "1", "--demo"],
            &["seed", "--repair"],
            &["reconcile", "--seed", "1"],
        ] {
            assert!(run(bad).is_err(), "{bad:?}");
        }
    }
}
