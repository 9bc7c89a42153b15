//! The world a case runs in, the check after every step, and the run.

use super::*;

pub(super) struct World {
    pub(super) clock: ManualClock,
    pub(super) gateway: TestGateway,
    pub(super) commerce: Commerce,
    pub(super) shop: Shop,
    pub(super) skus: Vec<Sku>,
}

/// Stock levels and adjustment histories of every SKU.
pub(super) async fn snapshot(
    world: &World,
) -> Result<Vec<(StockLevel, Vec<StockAdjustment>)>, TestCaseError> {
    let mut all = Vec::new();
    for sku in &world.skus {
        all.push((
            world.shop.stock(sku).await?,
            world.shop.stock_adjustments(sku).await?,
        ));
    }
    Ok(all)
}

/// The invariants, and the store agreeing with the model, after every step.
pub(super) async fn check(world: &World, model: &Model, ctx: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(world.clock.now().timestamp(), model.now, "{}: clock", ctx);
    for (s, sku) in world.skus.iter().enumerate() {
        let level = world.shop.stock(sku).await?;
        let adjustments = world.shop.stock_adjustments(sku).await?;
        let mut received: i64 = 0;
        let mut sold: i64 = 0;
        let mut running: i64 = 0;
        let mut sold_to: Vec<OrderId> = Vec::new();
        for adjustment in &adjustments {
            match &adjustment.kind {
                AdjustmentKind::Received => received += adjustment.delta,
                AdjustmentKind::Sold { order } => {
                    sold -= adjustment.delta;
                    // Only a paid order sells, once per line, its quantity.
                    let line = model
                        .orders
                        .iter()
                        .filter(|o| o.id == *order && o.status == OrderStatus::Paid)
                        .flat_map(|o| o.lines.iter())
                        .find(|(line, _)| *line == s);
                    prop_assert_eq!(
                        line.map(|&(_, qty)| -i64::from(qty)),
                        Some(adjustment.delta),
                        "{}: {} sold to {}",
                        ctx,
                        sku,
                        order
                    );
                    prop_assert!(
                        !sold_to.contains(order),
                        "{}: {} sold twice to {}",
                        ctx,
                        sku,
                        order
                    );
                    sold_to.push(*order);
                }
                _ => prop_assert!(false, "{}: unexpected adjustment {:?}", ctx, adjustment),
            }
            running += adjustment.delta;
            prop_assert_eq!(
                i64::from(adjustment.on_hand_after),
                running,
                "{}: {} history",
                ctx,
                sku
            );
        }
        let reserved = i64::from(level.reserved);
        let allocated = i64::from(level.allocated);

        // The no-oversell invariant.
        prop_assert!(
            reserved + allocated + sold <= received,
            "{}: {} oversold: reserved {} + allocated {} + sold {} > received {}",
            ctx,
            sku,
            reserved,
            allocated,
            sold,
            received
        );
        prop_assert_eq!(
            i64::from(level.on_hand),
            received - sold,
            "{}: {} on hand",
            ctx,
            sku
        );

        // The store agrees with the model.
        prop_assert_eq!(
            received,
            i64::from(model.received[s]),
            "{}: {} received",
            ctx,
            sku
        );
        prop_assert_eq!(sold, i64::from(model.sold[s]), "{}: {} sold", ctx, sku);
        prop_assert_eq!(
            level.reserved,
            model.reserved(s, None),
            "{}: {} reserved",
            ctx,
            sku
        );
        prop_assert_eq!(
            level.allocated,
            model.allocated(s, None),
            "{}: {} allocated",
            ctx,
            sku
        );
        prop_assert_eq!(
            level.available(),
            model.on_hand(s) - model.reserved(s, None) - model.allocated(s, None),
            "{}: {} available",
            ctx,
            sku
        );
    }
    for order in &model.orders {
        let real = world.shop.order(order.id).await?;
        prop_assert_eq!(
            real.status(),
            order.status,
            "{}: status of {}",
            ctx,
            order.id
        );
    }
    for cart in &model.carts {
        let real = world.shop.cart(cart.id).await?;
        let lines: Vec<(Sku, u32)> = real
            .lines
            .iter()
            .map(|l| (l.sku.clone(), l.quantity.get()))
            .collect();
        let expected: Vec<(Sku, u32)> = cart
            .lines
            .iter()
            .map(|&(s, q)| (world.skus[s].clone(), q))
            .collect();
        prop_assert_eq!(lines, expected, "{}: lines of cart {}", ctx, cart.id);
        let status = match cart.order {
            Some(o) => CartStatus::CheckedOut {
                order: model.orders[o].id,
            },
            None => CartStatus::Open,
        };
        prop_assert_eq!(real.status(), status, "{}: status of cart {}", ctx, cart.id);
    }
    let refunds: Vec<(OrderId, RefundReason)> = world
        .gateway
        .refund_calls()
        .iter()
        .map(|r| (r.order, r.reason))
        .collect();
    prop_assert_eq!(&refunds, &model.refunds, "{}: refund calls", ctx);
    Ok(())
}

pub(super) async fn apply(
    world: &World,
    event: &PaymentEvent,
    webhook: bool,
) -> Result<PaymentApplication, TestCaseError> {
    if !webhook {
        return Ok(world.shop.apply_payment_event(event).await?);
    }
    let request = world.gateway.webhook(event, world.clock.now());
    match world.commerce.handle_webhook(&request).await? {
        WebhookHandled::Applied(applied) => Ok(*applied),
        other => Err(TestCaseError::fail(format!(
            "webhook not applied: {other:?}"
        ))),
    }
}

/// Runs one case on `store`, a fresh store.
pub(super) async fn run(
    store: Arc<dyn Store>,
    initial: [u32; SKUS],
    carts: usize,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let clock = ManualClock::at_unix(START);
    let gateway = TestGateway::default();
    let commerce = Commerce::builder()
        .shared_store(store)
        .gateway(gateway.clone())
        .clock(clock.clone())
        .config(
            Config::default()
                .with_reservation_ttl(std::time::Duration::from_secs(TTL.unsigned_abs()))
                .with_payment_window(std::time::Duration::from_secs(WINDOW.unsigned_abs())),
        )
        .build()?;
    let shop = commerce.shop(&TenantId::parse("prop-shop")?);
    let mut skus = Vec::new();
    for (s, &units) in initial.iter().enumerate() {
        let sku = Sku::parse(format!("SKU-{}", s + 1))?;
        shop.add_product(NewProduct {
            name: format!("Card {}", s + 1),
            category: Category::parse("gpu")?,
            tax_category: TaxCategory::parse("standard")?,
            age_restricted: false,
            variants: vec![Variant::new(
                sku.clone(),
                Money::new(PRICES[s], Currency::AUD),
            )],
            published: true,
        })
        .await?;
        shop.receive_stock(&sku, Quantity::new(units)?, None)
            .await?;
        skus.push(sku);
    }
    let mut model = Model {
        now: START,
        received: initial,
        sold: [0; SKUS],
        carts: Vec::new(),
        orders: Vec::new(),
        keys: HashMap::new(),
        refunds: Vec::new(),
        last_event: None,
    };
    for _ in 0..carts {
        let cart = shop.create_cart(Currency::AUD).await?;
        model.carts.push(ModelCart {
            id: cart.id,
            lines: Vec::new(),
            reservations: [None; SKUS],
            reclaimable: [false; SKUS],
            order: None,
        });
    }
    let world = World {
        clock,
        gateway,
        commerce,
        shop,
        skus,
    };
    check(&world, &model, "setup").await?;

    for (step, op) in ops.iter().enumerate() {
        let ctx = format!("step {step} {op:?}");
        let ctx = ctx.as_str();
        match op {
            Op::SetLine { cart, sku, qty } => {
                set_line(&world, &mut model, ctx, cart.index(carts), *sku, *qty).await?
            }
            Op::Checkout { cart, key } => {
                let key = match key {
                    Key::Fresh => format!("k-op{step}"),
                    Key::Shared(n) => format!("k-{n}"),
                };
                checkout(&world, &mut model, ctx, cart.index(carts), key).await?;
            }
            Op::Pay { order, webhook } => {
                if !model.orders.is_empty() {
                    let o = order.index(model.orders.len());
                    pay(&world, &mut model, ctx, o, step, *webhook).await?;
                }
            }
            Op::PayAgain { webhook } => {
                if let Some(event) = model.last_event.clone() {
                    let before = snapshot(&world).await?;
                    let applied = apply(&world, &event, *webhook).await?;
                    prop_assert_eq!(&applied.outcome, &PaymentOutcome::Duplicate, "{}", ctx);
                    prop_assert_eq!(
                        snapshot(&world).await?,
                        before,
                        "{}: a duplicate changed stock",
                        ctx
                    );
                }
            }
            Op::Cancel { order } => {
                if !model.orders.is_empty() {
                    let o = order.index(model.orders.len());
                    let id = model.orders[o].id;
                    let result = world.shop.cancel_order(id, "property test").await;
                    match model.orders[o].status {
                        OrderStatus::AwaitingPayment | OrderStatus::Expired => {
                            let order = result?;
                            prop_assert_eq!(order.status(), OrderStatus::Cancelled, "{}", ctx);
                            model.orders[o].status = OrderStatus::Cancelled;
                        }
                        from => prop_assert!(
                            matches!(
                                result,
                                Err(Error::InvalidTransition { order, from: f, to: OrderStatus::Cancelled })
                                    if order == id && f == from
                            ),
                            "{}: {:?}",
                            ctx,
                            result
                        ),
                    }
                }
            }
            Op::Advance { secs } => {
                world.clock.advance(Duration::from_secs(*secs));
                model.now += i64::try_from(*secs).unwrap();
            }
            Op::Sweep => {
                let report = world.shop.sweep().await?;
                let now = model.now;
                // Lapsed reservations no other reservation may have
                // reclaimed, and those one may have.
                let (mut stale, mut maybe_reclaimed) = (0, 0);
                for cart in &mut model.carts {
                    for (reservation, reclaimable) in
                        cart.reservations.iter_mut().zip(&mut cart.reclaimable)
                    {
                        if reservation.is_some_and(|(_, expires_at)| expires_at <= now) {
                            if *reclaimable {
                                maybe_reclaimed += 1;
                            } else {
                                stale += 1;
                            }
                            *reservation = None;
                            *reclaimable = false;
                        }
                    }
                }
                let mut expired = Vec::new();
                for order in &mut model.orders {
                    if order.status == OrderStatus::AwaitingPayment && order.expires_at <= now {
                        order.status = OrderStatus::Expired;
                        expired.push(order.id);
                    }
                }
                let mut reported = report.orders_expired.clone();
                reported.sort();
                expired.sort();
                prop_assert_eq!(reported, expired, "{}: orders expired", ctx);
                prop_assert!(
                    (stale..=stale + maybe_reclaimed).contains(&report.reservations_removed),
                    "{}: {} reservations removed, expected {} and up to {} more",
                    ctx,
                    report.reservations_removed,
                    stale,
                    maybe_reclaimed
                );
                prop_assert_eq!(report.refunds_retried, 0, "{}: refunds retried", ctx);
            }
            Op::Receive { sku, qty } => {
                let level = world
                    .shop
                    .receive_stock(&world.skus[*sku], Quantity::new(*qty)?, None)
                    .await?;
                model.received[*sku] += qty;
                prop_assert_eq!(level.on_hand, model.on_hand(*sku), "{}", ctx);
            }
        }
        check(&world, &model, ctx).await?;
    }
    Ok(())
}
