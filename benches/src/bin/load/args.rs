//! The command line, parsed by hand: a command (`race` or `mixed`), then
//! `--name value` or `--name=value` options. Every option takes a value;
//! an option given twice, or one the command does not take, is refused.

use std::path::PathBuf;
use std::time::Duration;

/// What `--help` prints.
pub const USAGE: &str = "\
load: an HTTP load client of a shop serving commerce-http's API

USAGE:
  load race  --url URL (--admin-key KEY | --admin-key-file PATH) [--buyers 1000]
  load mixed --url URL (--admin-key KEY | --admin-key-file PATH) [--duration 20]
             [--concurrency 32] [--checkout-percent 20] [--browse-percent 50]
             [--products 200]

race:  one new product with one unit; N buyers, each on its own connection
       with its own cart, released at once (a barrier) to add that SKU;
       exactly one may win. The winner checks out; the admin API must then
       show exactly one order of the SKU.
mixed: for --duration seconds, --concurrency workers loop over a mix of
       browse (list, product, availability), reserve (cart + line) and
       checkout (cart + line + checkout) on --products seeded products;
       what is left after checkout and browse is reserve.

Options of both:
  --url URL                 the shop's base, http://host:port[/path]
  --admin-key KEY           an admin API key (catalog and stock scopes, orders to read)
  --admin-key-file PATH     a file holding the key, or the shop's captured output
                            (its line `admin API key (all scopes): KEY`)
  --storefront-prefix P     the storefront API's prefix (default /api/store)
  --admin-prefix P          the admin API's prefix (default /api/admin)
  --currency CODE           the shop's currency (default AUD)
  --timeout SECONDS         per request, a transport error when exceeded (default 60)

Exit status: 0 pass, 1 a fault (race: not exactly one winner and one order,
a refusal other than 409 insufficient_stock; both: a 5xx, a transport error,
an unexpected status), 2 a usage or setup error.";

/// commerce-http's `ApiMounts::default().storefront`.
pub const DEFAULT_STOREFRONT_PREFIX: &str = "/api/store";
/// commerce-http's `ApiMounts::default().admin`.
pub const DEFAULT_ADMIN_PREFIX: &str = "/api/admin";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `--help`.
    Help,
    /// `race`.
    Race(Race),
    /// `mixed`.
    Mixed(Mixed),
}

/// Where the admin key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--admin-key`.
    Literal(String),
    /// `--admin-key-file`.
    File(PathBuf),
}

/// The options both commands take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub url: String,
    pub admin_key: KeySource,
    pub storefront_prefix: String,
    pub admin_prefix: String,
    pub currency: String,
    pub timeout: Duration,
}

/// `race`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Race {
    pub common: Common,
    pub buyers: usize,
}

/// `mixed`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mixed {
    pub common: Common,
    pub duration: Duration,
    pub concurrency: usize,
    pub checkout_percent: u32,
    pub browse_percent: u32,
    pub products: usize,
}

/// Parses the arguments after the program's name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let Some(command) = args.next() else {
        return Err("a command is needed: race or mixed".to_owned());
    };
    if is_help(&command) {
        return Ok(Command::Help);
    }
    let mut flags = Flags::read(args)?;
    if flags.help {
        return Ok(Command::Help);
    }
    let parsed = match command.as_str() {
        "race" => {
            let common = common(&mut flags)?;
            let buyers = flags.number("buyers", 1000)?;
            if buyers < 2 {
                return Err("--buyers must be at least 2".to_owned());
            }
            Command::Race(Race { common, buyers })
        }
        "mixed" => {
            let common = common(&mut flags)?;
            let duration = Duration::from_secs(flags.number("duration", 20)?);
            let concurrency = flags.number("concurrency", 32)?;
            let checkout_percent: u32 = flags.number("checkout-percent", 20)?;
            let browse_percent: u32 = flags.number("browse-percent", 50)?;
            let products = flags.number("products", 200)?;
            if duration.is_zero() {
                return Err("--duration must be at least 1 second".to_owned());
            }
            if concurrency == 0 || products == 0 {
                return Err("--concurrency and --products must be at least 1".to_owned());
            }
            if checkout_percent.saturating_add(browse_percent) > 100 {
                return Err(
                    "--checkout-percent and --browse-percent add up to more than 100".into(),
                );
            }
            Command::Mixed(Mixed {
                common,
                duration,
                concurrency,
                checkout_percent,
                browse_percent,
                products,
            })
        }
        other => return Err(format!("unknown command {other:?}: race or mixed")),
    };
    flags.finish(&command)?;
    Ok(parsed)
}

fn is_help(arg: &str) -> bool {
    matches!(arg, "--help" | "-h" | "help")
}

fn common(flags: &mut Flags) -> Result<Common, String> {
    let url = flags
        .take("url")?
        .ok_or_else(|| "--url is required".to_owned())?;
    let admin_key = match (flags.take("admin-key")?, flags.take("admin-key-file")?) {
        (Some(key), None) => KeySource::Literal(key),
        (None, Some(path)) => KeySource::File(PathBuf::from(path)),
        (Some(_), Some(_)) => {
            return Err("give --admin-key or --admin-key-file, not both".to_owned());
        }
        (None, None) => return Err("--admin-key or --admin-key-file is required".to_owned()),
    };
    let storefront_prefix = prefix(flags.take("storefront-prefix")?, DEFAULT_STOREFRONT_PREFIX)?;
    let admin_prefix = prefix(flags.take("admin-prefix")?, DEFAULT_ADMIN_PREFIX)?;
    let currency = flags.take("currency")?.unwrap_or_else(|| "AUD".to_owned());
    let timeout = Duration::from_secs(flags.number("timeout", 60)?);
    if timeout.is_zero() {
        return Err("--timeout must be at least 1 second".to_owned());
    }
    Ok(Common {
        url,
        admin_key,
        storefront_prefix,
        admin_prefix,
        currency,
        timeout,
    })
}

/// A mount prefix: starts with `/` (or is empty, for the root), no
/// trailing `/`.
fn prefix(given: Option<String>, default: &str) -> Result<String, String> {
    let Some(given) = given else {
        return Ok(default.to_owned());
    };
    let trimmed = given.trim_end_matches('/');
    if !trimmed.is_empty() && !trimmed.starts_with('/') {
        return Err(format!("a prefix starts with '/': {given:?}"));
    }
    Ok(trimmed.to_owned())
}

/// The options, in the order given, not yet taken by a command.
struct Flags {
    pairs: Vec<(String, String)>,
    help: bool,
}

impl Flags {
    fn read(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut help = false;
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            if is_help(&arg) {
                help = true;
                continue;
            }
            let Some(option) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let (name, value) = match option.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => match args.next() {
                    Some(value) => (option.to_owned(), value),
                    None => return Err(format!("--{option} needs a value")),
                },
            };
            if pairs.iter().any(|(seen, _)| *seen == name) {
                return Err(format!("--{name} is given twice"));
            }
            pairs.push((name, value));
        }
        Ok(Self { pairs, help })
    }

    fn take(&mut self, name: &str) -> Result<Option<String>, String> {
        let Some(at) = self.pairs.iter().position(|(seen, _)| seen == name) else {
            return Ok(None);
        };
        let (_, value) = self.pairs.remove(at);
        if value.is_empty() {
            return Err(format!("--{name} needs a value"));
        }
        Ok(Some(value))
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.take(name)? {
            None => Ok(default),
            Some(value) => value
                .parse()
                .map_err(|_| format!("--{name} takes a whole number, not {value:?}")),
        }
    }

    fn finish(self, command: &str) -> Result<(), String> {
        match self.pairs.first() {
            None => Ok(()),
            Some((name, _)) => Err(format!("{command} does not take --{name}")),
        }
    }
}

/// The admin key in a file: the value of a line `admin API key (...): KEY`
/// (the shop's start-up output), or else the file's only word.
pub fn key_from_text(text: &str) -> Option<String> {
    let announced = text
        .lines()
        .filter(|line| line.contains("admin API key"))
        .filter_map(|line| line.rsplit_once(": "))
        .map(|(_, key)| key.trim())
        .rfind(|key| !key.is_empty() && !key.contains(char::is_whitespace));
    if let Some(key) = announced {
        return Some(key.to_owned());
    }
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(key), None) => Some(key.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(str::to_owned))
    }

    fn common(key: KeySource) -> Common {
        Common {
            url: "http://127.0.0.1:3100".to_owned(),
            admin_key: key,
            storefront_prefix: "/api/store".to_owned(),
            admin_prefix: "/api/admin".to_owned(),
            currency: "AUD".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn race_takes_its_defaults() {
        assert_eq!(
            args("race --url http://127.0.0.1:3100 --admin-key k1"),
            Ok(Command::Race(Race {
                common: common(KeySource::Literal("k1".to_owned())),
                buyers: 1000,
            }))
        );
    }

    #[test]
    fn mixed_takes_its_defaults() {
        assert_eq!(
            args("mixed --url=http://127.0.0.1:3100 --admin-key-file /tmp/shop.out"),
            Ok(Command::Mixed(Mixed {
                common: common(KeySource::File(PathBuf::from("/tmp/shop.out"))),
                duration: Duration::from_secs(20),
                concurrency: 32,
                checkout_percent: 20,
                browse_percent: 50,
                products: 200,
            }))
        );
    }

    #[test]
    fn every_option_is_read() {
        let parsed = args(
            "mixed --url http://h:1/shop --admin-key k --duration 5 --concurrency 4 \
             --checkout-percent 10 --browse-percent 90 --products 7 --currency EUR \
             --storefront-prefix /s/ --admin-prefix=/a --timeout 3",
        );
        assert_eq!(
            parsed,
            Ok(Command::Mixed(Mixed {
                common: Common {
                    url: "http://h:1/shop".to_owned(),
                    admin_key: KeySource::Literal("k".to_owned()),
                    storefront_prefix: "/s".to_owned(),
                    admin_prefix: "/a".to_owned(),
                    currency: "EUR".to_owned(),
                    timeout: Duration::from_secs(3),
                },
                duration: Duration::from_secs(5),
                concurrency: 4,
                checkout_percent: 10,
                browse_percent: 90,
                products: 7,
            }))
        );
        let race = args("race --url http://h --admin-key k --buyers 50 --storefront-prefix=");
        assert_eq!(race, Err("--storefront-prefix needs a value".to_owned()));
    }

    #[test]
    fn help_wins_anywhere() {
        assert_eq!(args("--help"), Ok(Command::Help));
        assert_eq!(args("race --url x -h"), Ok(Command::Help));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("", "a command is needed: race or mixed"),
            ("soak --url u", "unknown command \"soak\": race or mixed"),
            ("race --admin-key k", "--url is required"),
            (
                "race --url u",
                "--admin-key or --admin-key-file is required",
            ),
            (
                "race --url u --admin-key k --admin-key-file f",
                "give --admin-key or --admin-key-file, not both",
            ),
            ("race --url u --url v", "--url is given twice"),
            ("race --url", "--url needs a value"),
            (
                "race --url u --admin-key k extra",
                "unexpected argument \"extra\"",
            ),
            (
                "race --url u --admin-key k --buyers ten",
                "--buyers takes a whole number, not \"ten\"",
            ),
            (
                "race --url u --admin-key k --buyers -3",
                "--buyers takes a whole number, not \"-3\"",
            ),
            (
                "race --url u --admin-key k --buyers 1",
                "--buyers must be at least 2",
            ),
            (
                "race --url u --admin-key k --duration 5",
                "race does not take --duration",
            ),
            (
                "mixed --url u --admin-key k --checkout-percent 60 --browse-percent 50",
                "--checkout-percent and --browse-percent add up to more than 100",
            ),
            (
                "mixed --url u --admin-key k --duration 0",
                "--duration must be at least 1 second",
            ),
            (
                "mixed --url u --admin-key k --concurrency 0",
                "--concurrency and --products must be at least 1",
            ),
            (
                "mixed --url u --admin-key k --admin-prefix api",
                "a prefix starts with '/': \"api\"",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(args(line), Err(expected.to_owned()), "{line}");
        }
    }

    #[test]
    fn the_key_is_found_in_the_shops_output_or_alone() {
        let output = "hardware-shop: one-of-a-kind used hardware\n\
                      store: PostgreSQL (DATABASE_URL, database load_hw at 127.0.0.1:5432)\n\
                      admin API key (all scopes): ck_live_abc123\n\
                      listening on http://127.0.0.1:3100\n";
        assert_eq!(key_from_text(output), Some("ck_live_abc123".to_owned()));
        assert_eq!(key_from_text("  ck_1\n"), Some("ck_1".to_owned()));
        assert_eq!(key_from_text("two words"), None);
        assert_eq!(key_from_text(""), None);
        assert_eq!(key_from_text("admin API key (all scopes): \n"), None);
    }
}
