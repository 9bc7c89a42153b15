//! `race`: N buyers for the last unit. Exactly one may hold it; every
//! other must be refused with 409 `insufficient_stock`; the winner's
//! checkout must make the only order of the SKU.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Barrier, Semaphore};
use tokio::task::JoinSet;

use crate::api::{self, Api, CartView, CheckoutView, OrderList, SetupError, StockLevel};
use crate::args::Race;
use crate::http::{Conn, Reply, Target, Transport};
use crate::stats::{Millis, Samples, Tally};

/// How many buyers connect and open their carts at once before the race
/// (the race itself releases all of them together).
const SETUP_CONCURRENCY: usize = 64;

/// How far back the order search starts, for a shop clock a little behind
/// this one.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A buyer ready to race: a connection of its own and an open cart.
struct Buyer {
    conn: Conn,
    cart: String,
}

/// What one buyer's `PUT /carts/{cart}/lines/{sku}` got.
struct Attempt {
    cart: String,
    outcome: Result<Reply, Transport>,
}

/// Runs the race; `Ok(true)` when it passed.
pub async fn run(options: &Race, target: Arc<Target>, api: Arc<Api>) -> Result<bool, SetupError> {
    let timeout = options.common.timeout;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = run.get(..8).unwrap_or(&run).to_owned();
    let sku = format!("LOAD-RACE-{run}");
    let searched_from =
        (chrono::Utc::now() - CLOCK_SLACK).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    println!(
        "race: {} buyers for the one unit of {sku} at http://{}{}",
        options.buyers,
        target.authority(),
        target.base
    );
    let mut admin = Conn::open(target.clone(), timeout).await?;
    let name = format!("Load race {run} (one unit)");
    let _: api::ProductHead = api::expect(
        &mut admin,
        "create the product",
        201,
        api.create_product(&name, &sku, 9_900),
    )
    .await?;
    let received: StockLevel = api::expect(
        &mut admin,
        "receive one unit",
        200,
        api.receive(&sku, 1, &format!("load-race-{run}")),
    )
    .await?;
    if received.on_hand != 1 {
        return Err(SetupError(format!(
            "receive one unit: the stock says {} on hand",
            received.on_hand
        )));
    }

    let setup = Instant::now();
    let buyers = prepare(options.buyers, &target, &api, timeout).await?;
    println!(
        "setup: {} connections, each with an open cart, in {:.2} s",
        buyers.len(),
        setup.elapsed().as_secs_f64()
    );

    // Every buyer waits at the barrier with its request ready; the last
    // arrival (this task) releases them all.
    let barrier = Arc::new(Barrier::new(buyers.len() + 1));
    let mut racers = JoinSet::new();
    for Buyer { mut conn, cart } in buyers {
        let barrier = barrier.clone();
        let request = api.set_line(&cart, &sku, 1);
        racers.spawn(async move {
            barrier.wait().await;
            let outcome = conn.send(request).await;
            Attempt { cart, outcome }
        });
    }
    barrier.wait().await;
    let released = Instant::now();
    let mut attempts = Vec::with_capacity(options.buyers);
    let mut lost_tasks = 0_u64;
    while let Some(joined) = racers.join_next().await {
        match joined {
            Ok(attempt) => attempts.push(attempt),
            Err(_) => lost_tasks += 1,
        }
    }
    let wall = released.elapsed();

    let verdict = judge(&sku, attempts, lost_tasks);
    verdict.print(wall);

    // The winner (or, wrongly, every winner) checks out, on a new
    // connection: the first one may have idled past the server's limit.
    let mut admin = Conn::open(target.clone(), timeout).await?;
    let mut checkouts = Vec::new();
    let mut checkout_faults = Tally::default();
    for (cart, total) in &verdict.winners {
        let key = format!("load-race-{run}-{cart}");
        match admin.send(api.checkout(cart, &key, total)).await {
            Ok(reply) if reply.status.as_u16() == 201 => match reply.json::<CheckoutView>() {
                Ok(view) => {
                    println!(
                        "checkout: cart {cart} placed order {} in {}",
                        view.order.id,
                        Millis(micros(reply.elapsed))
                    );
                    checkouts.push(view.order.id);
                }
                Err(message) => checkout_faults.add(message),
            },
            Ok(reply) => checkout_faults.add(reply.describe()),
            Err(error) => checkout_faults.add(error.to_string()),
        }
    }
    if !checkout_faults.is_empty() {
        println!("checkout faults: {checkout_faults}");
    }

    let stock: StockLevel = api::expect(&mut admin, "read the stock", 200, api.stock(&sku)).await?;
    let orders = orders_of(&mut admin, &api, &sku, &searched_from).await?;
    println!(
        "admin: {} order(s) of {sku}; stock on hand {}, allocated {}, held by carts {}",
        orders.len(),
        stock.on_hand,
        stock.allocated,
        stock.reserved
    );

    let mut failures = verdict.failures(options.buyers);
    if !checkout_faults.is_empty() {
        failures.push(format!("the winner's checkout failed: {checkout_faults}"));
    }
    if orders.len() != 1 {
        failures.push(format!("{} orders of the SKU, not 1", orders.len()));
    } else if orders != checkouts {
        failures.push(format!(
            "the SKU's order {orders:?} is not the winner's {checkouts:?}"
        ));
    }
    if stock.allocated.saturating_add(stock.reserved) > stock.on_hand || stock.allocated != 1 {
        failures.push(format!(
            "stock: on hand {}, allocated {}, held {} (expected 1, 1, 0)",
            stock.on_hand, stock.allocated, stock.reserved
        ));
    }
    if failures.is_empty() {
        println!(
            "PASS: one winner, one order, {} refused with 409 insufficient_stock",
            options.buyers.saturating_sub(1)
        );
        Ok(true)
    } else {
        for failure in &failures {
            println!("FAIL: {failure}");
        }
        Ok(false)
    }
}

/// Opens `count` connections, each with a cart, `SETUP_CONCURRENCY` at a
/// time.
async fn prepare(
    count: usize,
    target: &Arc<Target>,
    api: &Arc<Api>,
    timeout: Duration,
) -> Result<Vec<Buyer>, SetupError> {
    let permits = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for _ in 0..count {
        let permits = permits.clone();
        let target = target.clone();
        let api = api.clone();
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .map_err(|e| SetupError(e.to_string()))?;
            let mut conn = Conn::open(target, timeout).await?;
            let cart: CartView =
                api::expect(&mut conn, "open a cart", 201, api.create_cart()).await?;
            Ok::<_, SetupError>(Buyer {
                conn,
                cart: cart.cart.id,
            })
        });
    }
    let mut buyers = Vec::with_capacity(count);
    let mut failed = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(buyer)) => buyers.push(buyer),
            Ok(Err(error)) => failed.add(error.0),
            Err(error) => failed.add(format!("task: {error}")),
        }
    }
    if failed.is_empty() {
        Ok(buyers)
    } else {
        Err(SetupError(format!(
            "{} of {count} buyers could not connect and open a cart: {failed}",
            failed.total()
        )))
    }
}

/// The ids of the orders placed since `from` that hold `sku`.
async fn orders_of(
    admin: &mut Conn,
    api: &Api,
    sku: &str,
    from: &str,
) -> Result<Vec<String>, SetupError> {
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page: OrderList = api::expect(
            admin,
            "list the orders",
            200,
            api.orders(from, cursor.as_deref()),
        )
        .await?;
        found.extend(
            page.data
                .into_iter()
                .filter(|order| order.lines.iter().any(|line| line.sku == sku))
                .map(|order| order.id),
        );
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok(found),
        }
    }
}

/// The race's answers, sorted.
struct Verdict {
    /// Each winner's cart and the total its answer showed.
    winners: Vec<(String, serde_json::Value)>,
    /// `409 insufficient_stock` answers.
    refusals: u64,
    /// Refusals whose `available` was not 0.
    refusals_not_zero: u64,
    /// Answers other than a hold or that refusal, by status and code.
    unexpected: Tally,
    /// 5xx answers among them.
    server_errors: u64,
    /// No answer, by kind.
    transport: Tally,
    first_transport: Option<String>,
    /// Set-line latencies of the answered requests.
    latency: Samples,
}

fn judge(sku: &str, attempts: Vec<Attempt>, lost_tasks: u64) -> Verdict {
    let mut verdict = Verdict {
        winners: Vec::new(),
        refusals: 0,
        refusals_not_zero: 0,
        unexpected: Tally::default(),
        server_errors: 0,
        transport: Tally::default(),
        first_transport: None,
        latency: Samples::default(),
    };
    for _ in 0..lost_tasks {
        verdict.transport.add("task lost");
    }
    for Attempt { cart, outcome } in attempts {
        let reply = match outcome {
            Ok(reply) => reply,
            Err(error) => {
                verdict.transport.add(error.kind());
                verdict.first_transport.get_or_insert(error.to_string());
                continue;
            }
        };
        verdict.latency.record(reply.elapsed);
        let status = reply.status.as_u16();
        if status == 200 {
            match reply.json::<CartView>() {
                Ok(view)
                    if view
                        .reservations
                        .iter()
                        .any(|hold| hold.sku == sku && hold.quantity == 1) =>
                {
                    verdict
                        .winners
                        .push((cart, view.pricing.totals.grand_total));
                }
                Ok(_) => verdict.unexpected.add("200 without a hold"),
                Err(_) => verdict.unexpected.add("200 unreadable"),
            }
            continue;
        }
        match reply.problem() {
            Some(problem) if status == 409 && problem.code == "insufficient_stock" => {
                verdict.refusals += 1;
                if problem.available != Some(0) {
                    verdict.refusals_not_zero += 1;
                }
            }
            _ => {
                if reply.status.is_server_error() {
                    verdict.server_errors += 1;
                }
                verdict.unexpected.add(reply.describe());
            }
        }
    }
    verdict
}

impl Verdict {
    fn print(&self, wall: Duration) {
        println!(
            "set-line: {} winner(s), {} refused with 409 insufficient_stock ({} of them not saying available 0), \
             unexpected answers: {}, no answer: {}",
            self.winners.len(),
            self.refusals,
            self.refusals_not_zero,
            self.unexpected,
            self.transport
        );
        if let Some(first) = &self.first_transport {
            println!("first transport error: {first}");
        }
        print!(
            "set-line: wall time {:.3} s from release to the last answer",
            wall.as_secs_f64()
        );
        match self.latency.summary() {
            Some(s) => println!(
                "; latency of {} answers p50 {}, p99 {}, max {}",
                s.count,
                Millis(s.p50),
                Millis(s.p99),
                Millis(s.max)
            ),
            None => println!("; no answers"),
        }
    }

    fn failures(&self, buyers: usize) -> Vec<String> {
        let mut failures = Vec::new();
        if self.winners.len() != 1 {
            failures.push(format!("{} winners, not 1", self.winners.len()));
        }
        let losers = u64::try_from(buyers.saturating_sub(1)).unwrap_or(u64::MAX);
        if self.refusals != losers {
            failures.push(format!(
                "{} refusals with 409 insufficient_stock, not {losers}",
                self.refusals
            ));
        }
        if self.refusals_not_zero > 0 {
            failures.push(format!(
                "{} refusals say more than 0 available",
                self.refusals_not_zero
            ));
        }
        if !self.unexpected.is_empty() {
            failures.push(format!(
                "unexpected answers ({} of them 5xx): {}",
                self.server_errors, self.unexpected
            ));
        }
        if !self.transport.is_empty() {
            failures.push(format!("requests without an answer: {}", self.transport));
        }
        failures
    }
}

/// A duration in whole microseconds.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::StatusCode;
    use hyper::body::Bytes;

    fn answer(cart: &str, status: u16, body: &str) -> Attempt {
        Attempt {
            cart: cart.to_owned(),
            outcome: Ok(Reply {
                status: StatusCode::from_u16(status).unwrap(),
                body: Bytes::from(body.to_owned()),
                elapsed: Duration::from_millis(5),
            }),
        }
    }

    const HOLD: &str = r#"{"cart":{"id":"c1"},"reservations":[{"sku":"S","quantity":1}],
        "pricing":{"totals":{"grand_total":{"amount":9900,"currency":"AUD"}}}}"#;
    const REFUSAL: &str = r#"{"code":"insufficient_stock","sku":"S","requested":1,"available":0}"#;

    #[test]
    fn one_winner_and_proper_refusals_pass() {
        let verdict = judge(
            "S",
            vec![
                answer("c1", 200, HOLD),
                answer("c2", 409, REFUSAL),
                answer("c3", 409, REFUSAL),
            ],
            0,
        );
        assert_eq!(verdict.winners.len(), 1);
        assert_eq!(verdict.latency.len(), 3);
        assert!(verdict.failures(3).is_empty(), "{:?}", verdict.failures(3));
    }

    #[test]
    fn every_fault_is_named() {
        let verdict = judge(
            "S",
            vec![
                answer("c1", 200, HOLD),
                answer("c2", 200, HOLD),
                answer("c3", 409, r#"{"code":"insufficient_stock","available":1}"#),
                answer("c4", 503, ""),
                answer("c5", 409, r#"{"code":"cart_checked_out"}"#),
            ],
            1,
        );
        assert_eq!(
            verdict.failures(6),
            vec![
                "2 winners, not 1".to_owned(),
                "1 refusals with 409 insufficient_stock, not 5".to_owned(),
                "1 refusals say more than 0 available".to_owned(),
                "unexpected answers (1 of them 5xx): 409 cart_checked_out × 1, 503 × 1".to_owned(),
                "requests without an answer: task lost × 1".to_owned(),
            ]
        );
    }
}
