//! `mixed`: a closed loop of workers, each on its own keep-alive
//! connection, over browse, reserve and checkout flows on products seeded
//! with plenty of stock. Records every request's latency by operation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::api::{self, Api, CartView, SetupError, StockLevel};
use crate::args::Mixed;
use crate::http::{Conn, Reply, Req, Target};
use crate::stats::{Millis, Samples, Tally};

/// Units received for each seeded SKU (`Quantity::MAX`): no reservation of
/// a run is refused.
const STOCK: u32 = 1_000_000;

/// Admin connections that seed the catalog.
const SEED_CONNECTIONS: usize = 4;

/// How long a worker waits before reconnecting after a transport error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// One kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ListProducts,
    Product,
    Availability,
    CreateCart,
    SetLine,
    Checkout,
}

impl Op {
    const ALL: [Op; 6] = [
        Op::ListProducts,
        Op::Product,
        Op::Availability,
        Op::CreateCart,
        Op::SetLine,
        Op::Checkout,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::ListProducts => "GET products",
            Op::Product => "GET product",
            Op::Availability => "GET availability",
            Op::CreateCart => "POST cart",
            Op::SetLine => "PUT line",
            Op::Checkout => "POST checkout",
        }
    }
}

/// One loop of a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// List products, read one, read its availability.
    Browse,
    /// Open a cart, add a line.
    Reserve,
    /// Open a cart, add a line, check out.
    Checkout,
}

/// Which flow a roll of 0–99 picks: checkout below `checkout`, browse
/// below `checkout + browse`, reserve above.
fn pick(roll: u64, checkout_percent: u32, browse_percent: u32) -> Flow {
    let checkout = u64::from(checkout_percent);
    if roll < checkout {
        Flow::Checkout
    } else if roll < checkout + u64::from(browse_percent) {
        Flow::Browse
    } else {
        Flow::Reserve
    }
}

/// One operation's record.
#[derive(Debug, Default)]
struct OpStats {
    latency: Samples,
    /// 2xx answers.
    ok: u64,
    /// 409 `insufficient_stock` (not expected with this much stock, but
    /// a refusal, not a fault).
    refused: u64,
    /// Everything else, by status and code, or by transport error kind.
    faults: Tally,
    server_errors: u64,
    transport: u64,
}

impl OpStats {
    fn merge(&mut self, other: OpStats) {
        self.latency.merge(other.latency);
        self.ok += other.ok;
        self.refused += other.refused;
        self.faults.merge(other.faults);
        self.server_errors += other.server_errors;
        self.transport += other.transport;
    }
}

/// Each operation's record.
#[derive(Debug, Default)]
struct Ops {
    list_products: OpStats,
    product: OpStats,
    availability: OpStats,
    create_cart: OpStats,
    set_line: OpStats,
    checkout: OpStats,
}

impl Ops {
    fn get(&self, op: Op) -> &OpStats {
        match op {
            Op::ListProducts => &self.list_products,
            Op::Product => &self.product,
            Op::Availability => &self.availability,
            Op::CreateCart => &self.create_cart,
            Op::SetLine => &self.set_line,
            Op::Checkout => &self.checkout,
        }
    }

    fn get_mut(&mut self, op: Op) -> &mut OpStats {
        match op {
            Op::ListProducts => &mut self.list_products,
            Op::Product => &mut self.product,
            Op::Availability => &mut self.availability,
            Op::CreateCart => &mut self.create_cart,
            Op::SetLine => &mut self.set_line,
            Op::Checkout => &mut self.checkout,
        }
    }

    fn merge(&mut self, mut other: Ops) {
        for op in Op::ALL {
            self.get_mut(op).merge(std::mem::take(other.get_mut(op)));
        }
    }
}

/// How many loops of each flow were started.
#[derive(Debug, Default, Clone, Copy)]
struct Flows {
    browse: u64,
    reserve: u64,
    checkout: u64,
}

#[derive(Debug, Default)]
struct WorkerStats {
    ops: Ops,
    flows: Flows,
    first_fault: Option<String>,
}

impl WorkerStats {
    fn op(&mut self, op: Op) -> &mut OpStats {
        self.ops.get_mut(op)
    }

    fn merge(&mut self, other: WorkerStats) {
        self.ops.merge(other.ops);
        self.flows.browse += other.flows.browse;
        self.flows.reserve += other.flows.reserve;
        self.flows.checkout += other.flows.checkout;
        if self.first_fault.is_none() {
            self.first_fault = other.first_fault;
        }
    }

    fn fault(&mut self, op: Op, name: String, detail: String) {
        self.op(op).faults.add(name);
        self.first_fault
            .get_or_insert_with(|| format!("{}: {detail}", op.name()));
    }
}

/// A seeded product.
#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    sku: String,
}

/// xorshift64*: a worker's own fast sequence of SKU picks and rolls.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        Self((high ^ low) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..bound` (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn choose<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let len = u64::try_from(items.len()).ok()?;
        let at = usize::try_from(self.below(len)).ok()?;
        items.get(at)
    }
}

/// Runs the mix; `Ok(true)` when no request faulted.
pub async fn run(options: &Mixed, target: Arc<Target>, api: Arc<Api>) -> Result<bool, SetupError> {
    let timeout = options.common.timeout;
    let reserve_percent = 100_u32
        .saturating_sub(options.checkout_percent)
        .saturating_sub(options.browse_percent);
    println!(
        "mixed: {} workers for {} s at http://{}{}, {} products; \
         flows: browse {}%, reserve {reserve_percent}%, checkout {}%",
        options.concurrency,
        options.duration.as_secs(),
        target.authority(),
        target.base,
        options.products,
        options.browse_percent,
        options.checkout_percent,
    );
    let seeding = Instant::now();
    let catalog = Arc::new(seed(options.products, &target, &api, timeout).await?);
    println!(
        "setup: {} products with {STOCK} units each in {:.2} s",
        catalog.len(),
        seeding.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let deadline = started + options.duration;
    let mut workers = JoinSet::new();
    for _ in 0..options.concurrency {
        let worker = Worker {
            target: target.clone(),
            api: api.clone(),
            catalog: catalog.clone(),
            timeout,
            checkout_percent: options.checkout_percent,
            browse_percent: options.browse_percent,
        };
        workers.spawn(worker.run(deadline));
    }
    let mut total = WorkerStats::default();
    let mut lost = 0_u64;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(stats) => total.merge(stats),
            Err(_) => lost += 1,
        }
    }
    let elapsed = started.elapsed();
    Ok(report(&total, elapsed, lost))
}

/// Creates `count` published products, one SKU each, and receives
/// [`STOCK`] units of each.
async fn seed(
    count: usize,
    target: &Arc<Target>,
    api: &Arc<Api>,
    timeout: Duration,
) -> Result<Vec<Seeded>, SetupError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = run.get(..8).unwrap_or(&run).to_owned();
    let mut tasks = JoinSet::new();
    for lane in 0..SEED_CONNECTIONS.min(count) {
        let target = target.clone();
        let api = api.clone();
        let run = run.clone();
        tasks.spawn(async move {
            let mut conn = Conn::open(target, timeout).await?;
            let mut seeded = Vec::new();
            for i in (lane..count).step_by(SEED_CONNECTIONS) {
                let sku = format!("LOAD-MIX-{run}-{i:04}");
                let cents = 1_000 + i64::try_from(i % 500).unwrap_or(0) * 97;
                let product: api::ProductHead = api::expect(
                    &mut conn,
                    "create a product",
                    201,
                    api.create_product(&format!("Load part {run} {i}"), &sku, cents),
                )
                .await?;
                let _: StockLevel = api::expect(
                    &mut conn,
                    "receive stock",
                    200,
                    api.receive(&sku, STOCK, &format!("load-mix-{run}-{i}")),
                )
                .await?;
                seeded.push((
                    i,
                    Seeded {
                        id: product.id,
                        sku,
                    },
                ));
            }
            Ok::<_, SetupError>(seeded)
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(seeded) => all.extend(seeded?),
            Err(error) => return Err(SetupError(format!("seeding task: {error}"))),
        }
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, seeded)| seeded).collect())
}

/// One closed-loop client.
struct Worker {
    target: Arc<Target>,
    api: Arc<Api>,
    catalog: Arc<Vec<Seeded>>,
    timeout: Duration,
    checkout_percent: u32,
    browse_percent: u32,
}

impl Worker {
    async fn run(self, deadline: Instant) -> WorkerStats {
        let mut stats = WorkerStats::default();
        let mut conn: Option<Conn> = None;
        let mut rng = Rng::new();
        while Instant::now() < deadline {
            let flow = pick(rng.below(100), self.checkout_percent, self.browse_percent);
            let Some(product) = rng.choose(&self.catalog) else {
                break;
            };
            match flow {
                Flow::Browse => {
                    stats.flows.browse += 1;
                    let api = &self.api;
                    self.call(
                        &mut conn,
                        &mut stats,
                        Op::ListProducts,
                        api.list_products(20),
                    )
                    .await;
                    self.call(&mut conn, &mut stats, Op::Product, api.product(&product.id))
                        .await;
                    self.call(
                        &mut conn,
                        &mut stats,
                        Op::Availability,
                        api.availability(&product.id),
                    )
                    .await;
                }
                Flow::Reserve => {
                    stats.flows.reserve += 1;
                    self.reserve(&mut conn, &mut stats, &product.sku).await;
                }
                Flow::Checkout => {
                    stats.flows.checkout += 1;
                    let Some(cart) = self.reserve(&mut conn, &mut stats, &product.sku).await else {
                        continue;
                    };
                    let key = uuid::Uuid::new_v4().to_string();
                    let request =
                        self.api
                            .checkout(&cart.cart.id, &key, &cart.pricing.totals.grand_total);
                    self.call(&mut conn, &mut stats, Op::Checkout, request)
                        .await;
                }
            }
        }
        stats
    }

    /// Opens a cart and adds one unit of `sku`; the cart's answer when
    /// both succeeded.
    async fn reserve(
        &self,
        conn: &mut Option<Conn>,
        stats: &mut WorkerStats,
        sku: &str,
    ) -> Option<CartView> {
        let opened = self
            .call(conn, stats, Op::CreateCart, self.api.create_cart())
            .await?;
        let cart = self.read::<CartView>(stats, Op::CreateCart, &opened)?;
        let added = self
            .call(
                conn,
                stats,
                Op::SetLine,
                self.api.set_line(&cart.cart.id, sku, 1),
            )
            .await?;
        self.read(stats, Op::SetLine, &added)
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        stats: &mut WorkerStats,
        op: Op,
        reply: &Reply,
    ) -> Option<T> {
        match reply.json() {
            Ok(value) => Some(value),
            Err(message) => {
                stats.fault(op, "unreadable answer".to_owned(), message);
                None
            }
        }
    }

    /// Sends `request` (connecting first when needed) and records it; the
    /// answer when it is a 2xx.
    async fn call(
        &self,
        conn: &mut Option<Conn>,
        stats: &mut WorkerStats,
        op: Op,
        request: Req,
    ) -> Option<Reply> {
        let open = match conn.take() {
            Some(open) if !open.is_closed() => open,
            _ => match Conn::open(self.target.clone(), self.timeout).await {
                Ok(open) => open,
                Err(error) => {
                    stats.op(op).transport += 1;
                    stats.fault(op, error.kind().to_owned(), error.to_string());
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    return None;
                }
            },
        };
        let conn = conn.insert(open);
        match conn.send(request).await {
            Ok(reply) => {
                let record = stats.op(op);
                record.latency.record(reply.elapsed);
                if reply.status.is_success() {
                    record.ok += 1;
                    return Some(reply);
                }
                let refused = reply.status.as_u16() == 409
                    && reply
                        .problem()
                        .is_some_and(|problem| problem.code == "insufficient_stock");
                if refused {
                    record.refused += 1;
                } else {
                    if reply.status.is_server_error() {
                        record.server_errors += 1;
                    }
                    stats.fault(op, reply.describe(), reply.excerpt());
                }
                None
            }
            Err(error) => {
                stats.op(op).transport += 1;
                stats.fault(op, error.kind().to_owned(), error.to_string());
                // The connection's state is unknown: start a new one.
                None
            }
        }
    }
}

/// Prints the run's figures; `true` when nothing faulted.
fn report(total: &WorkerStats, elapsed: Duration, lost_workers: u64) -> bool {
    let secs = elapsed.as_secs_f64();
    let mut overall = Samples::default();
    let mut faults = 0_u64;
    for op in Op::ALL {
        let stats = total.ops.get(op);
        overall.merge(stats.latency.clone());
        faults += stats.faults.total();
    }
    let answered = u64::try_from(overall.len()).unwrap_or(u64::MAX);
    let Flows {
        browse,
        reserve,
        checkout,
    } = total.flows;
    println!(
        "elapsed {secs:.2} s; flows: browse {browse}, reserve {reserve}, checkout {checkout} \
         ({:.1} checkouts/s)",
        rate(checkout, secs)
    );
    match overall.summary() {
        Some(s) => println!(
            "overall: {answered} answered requests, {:.1} req/s; latency p50 {}, p99 {}, max {}",
            rate(answered, secs),
            Millis(s.p50),
            Millis(s.p99),
            Millis(s.max)
        ),
        None => println!("overall: no answered requests"),
    }
    println!(
        "{:<17} {:>8} {:>8} {:>6} {:>7} {:>11} {:>11} {:>11}",
        "operation", "answers", "req/s", "409", "faults", "p50", "p99", "max"
    );
    for op in Op::ALL {
        let stats = total.ops.get(op);
        let count = u64::try_from(stats.latency.len()).unwrap_or(u64::MAX);
        let (p50, p99, max) = match stats.latency.summary() {
            Some(s) => (
                Millis(s.p50).to_string(),
                Millis(s.p99).to_string(),
                Millis(s.max).to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<17} {:>8} {:>8.1} {:>6} {:>7} {:>11} {:>11} {:>11}",
            op.name(),
            count,
            rate(count, secs),
            stats.refused,
            stats.faults.total(),
            p50,
            p99,
            max
        );
    }
    for op in Op::ALL {
        let stats = total.ops.get(op);
        if !stats.faults.is_empty() {
            println!(
                "faults of {}: {} ({} 5xx, {} without an answer)",
                op.name(),
                stats.faults,
                stats.server_errors,
                stats.transport
            );
        }
    }
    if let Some(first) = &total.first_fault {
        println!("first fault: {first}");
    }
    if lost_workers > 0 {
        println!("FAIL: {lost_workers} workers stopped abnormally");
        return false;
    }
    if faults > 0 {
        println!("FAIL: {faults} faults");
        false
    } else {
        println!("PASS: no faults");
        true
    }
}

fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_splits_the_rolls() {
        let mut counts = [0_u32; 3];
        for roll in 0..100 {
            let at = match pick(roll, 20, 50) {
                Flow::Checkout => 0,
                Flow::Browse => 1,
                Flow::Reserve => 2,
            };
            counts[at] += 1;
        }
        assert_eq!(counts, [20, 50, 30]);
        assert_eq!(pick(0, 0, 0), Flow::Reserve);
        assert_eq!(pick(99, 0, 100), Flow::Browse);
        assert_eq!(pick(99, 100, 0), Flow::Checkout);
    }

    #[test]
    fn picks_stay_in_range() {
        let mut rng = Rng::new();
        let items = [1, 2, 3];
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            assert!(rng.choose(&items).is_some());
        }
        assert_eq!(rng.choose::<u8>(&[]), None);
    }
}
