//! The steps that change carts, orders and payments, each checked against
//! the model.

use super::*;

pub(super) async fn set_line(
    world: &World,
    model: &mut Model,
    ctx: &str,
    c: usize,
    s: usize,
    qty: u32,
) -> Result<(), TestCaseError> {
    let cart_id = model.carts[c].id;
    let sku = &world.skus[s];
    let result = world.shop.set_line(cart_id, sku, Quantity::new(qty)?).await;
    if let Some(o) = model.carts[c].order {
        let order_id = model.orders[o].id;
        prop_assert!(
            matches!(&result, Err(Error::CartCheckedOut { cart, order }) if *cart == cart_id && *order == order_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    if qty > 0 {
        let held = model.reserved(s, Some(c)) + model.allocated(s, None);
        let available = model.on_hand(s).saturating_sub(held);
        if qty > available {
            prop_assert!(
                matches!(
                    &result,
                    Err(Error::InsufficientStock { sku: got, requested, available: a })
                        if got == sku && *requested == qty && *a == available
                ),
                "{}: expected InsufficientStock (available {}), got {:?}",
                ctx,
                available,
                result
            );
            return Ok(());
        }
    }
    prop_assert!(result.is_ok(), "{}: expected Ok, got {:?}", ctx, result);
    if qty > 0 {
        let now = model.now;
        for other in &mut model.carts {
            if other.reservations[s].is_some_and(|(_, expires_at)| expires_at <= now) {
                other.reclaimable[s] = true;
            }
        }
    }
    let cart = &mut model.carts[c];
    cart.reclaimable[s] = false;
    if qty == 0 {
        cart.lines.retain(|(line, _)| *line != s);
        cart.reservations[s] = None;
    } else {
        match cart.lines.iter_mut().find(|(line, _)| *line == s) {
            Some(line) => line.1 = qty,
            None => cart.lines.push((s, qty)),
        }
        cart.reservations[s] = Some((qty, model.now + TTL));
    }
    Ok(())
}

pub(super) async fn checkout(
    world: &World,
    model: &mut Model,
    ctx: &str,
    c: usize,
    key: String,
) -> Result<(), TestCaseError> {
    let cart_id = model.carts[c].id;
    let result = world
        .shop
        .checkout(cart_id, &IdempotencyKey::parse(key.clone())?)
        .await;

    if let Some(&o) = model.keys.get(&key) {
        let order = &model.orders[o];
        if order.cart != c {
            prop_assert!(
                matches!(&result, Err(Error::IdempotencyKeyReused { key: k, order: id }) if k.as_str() == key && *id == order.id),
                "{}: {:?}",
                ctx,
                result
            );
        } else {
            let done = result?;
            prop_assert!(
                !done.created,
                "{}: a repeated checkout created an order",
                ctx
            );
            prop_assert_eq!(done.order.id, order.id, "{}", ctx);
            prop_assert_eq!(done.order.status(), order.status, "{}", ctx);
            prop_assert_eq!(
                done.session.is_some(),
                order.status == OrderStatus::AwaitingPayment,
                "{}: session",
                ctx
            );
        }
        return Ok(());
    }
    if let Some(o) = model.carts[c].order {
        let order_id = model.orders[o].id;
        prop_assert!(
            matches!(&result, Err(Error::CartCheckedOut { cart, order }) if *cart == cart_id && *order == order_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    let cart = &model.carts[c];
    if cart.lines.is_empty() {
        prop_assert!(
            matches!(&result, Err(Error::EmptyCart(id)) if *id == cart_id),
            "{}: {:?}",
            ctx,
            result
        );
        return Ok(());
    }
    let lapsed = cart.lines.iter().find(|&&(s, qty)| {
        !cart.reservations[s]
            .is_some_and(|(reserved, expires_at)| model.now < expires_at && reserved >= qty)
    });
    if let Some(&(s, _)) = lapsed {
        prop_assert!(
            matches!(&result, Err(Error::ReservationLapsed { sku }) if *sku == world.skus[s]),
            "{}: expected ReservationLapsed for {}, got {:?}",
            ctx,
            world.skus[s],
            result
        );
        return Ok(());
    }

    let done = result?;
    let lines = cart.lines.clone();
    let total: i64 = lines
        .iter()
        .map(|&(s, qty)| PRICES[s] * i64::from(qty))
        .sum();
    prop_assert!(done.created, "{}", ctx);
    prop_assert!(done.session.is_some(), "{}: no session", ctx);
    prop_assert_eq!(done.order.status(), OrderStatus::AwaitingPayment, "{}", ctx);
    prop_assert_eq!(
        done.order.total(),
        Money::new(total, Currency::AUD),
        "{}: total",
        ctx
    );
    let got: Vec<(Sku, u32)> = done
        .order
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity.get()))
        .collect();
    let want: Vec<(Sku, u32)> = lines
        .iter()
        .map(|&(s, q)| (world.skus[s].clone(), q))
        .collect();
    prop_assert_eq!(got, want, "{}: order lines", ctx);
    prop_assert_eq!(
        done.order.payment_expires_at.timestamp(),
        model.now + WINDOW,
        "{}",
        ctx
    );

    let index = model.orders.len();
    model.orders.push(ModelOrder {
        id: done.order.id,
        cart: c,
        lines,
        total,
        expires_at: model.now + WINDOW,
        status: OrderStatus::AwaitingPayment,
    });
    model.keys.insert(key, index);
    let cart = &mut model.carts[c];
    cart.order = Some(index);
    cart.reservations = [None; SKUS];
    cart.reclaimable = [false; SKUS];
    Ok(())
}

pub(super) async fn pay(
    world: &World,
    model: &mut Model,
    ctx: &str,
    o: usize,
    step: usize,
    webhook: bool,
) -> Result<(), TestCaseError> {
    let order = &model.orders[o];
    let amount = Money::new(order.total, Currency::AUD);
    let payment_ref = format!("pay_{step}");
    let event = PaymentEvent {
        id: PaymentEventId::parse(format!("evt_{step}"))?,
        tenant: world.shop.tenant().clone(),
        order: order.id,
        kind: PaymentEventKind::Succeeded {
            amount,
            payment_ref: Some(payment_ref.clone()),
        },
    };
    let before = snapshot(world).await?;
    let applied = apply(world, &event, webhook).await?;
    model.last_event = Some(event.clone());
    let refund_id = RefundId::for_payment_event(&event.id);

    match order.status {
        OrderStatus::AwaitingPayment | OrderStatus::Expired => {
            // The payment takes the stock iff, for every line, what is on
            // hand minus every live reservation and every other order's
            // live allocation covers it.
            let short = order.lines.iter().any(|&(s, qty)| {
                let held = model.reserved(s, None) + model.allocated(s, Some(o));
                model.on_hand(s).saturating_sub(held) < qty
            });
            if short {
                let PaymentOutcome::Oversold { refund } = &applied.outcome else {
                    return Err(TestCaseError::fail(format!(
                        "{ctx}: expected Oversold, got {:?}",
                        applied.outcome
                    )));
                };
                prop_assert_eq!(&refund.id, &refund_id, "{}", ctx);
                prop_assert_eq!(refund.order, order.id, "{}", ctx);
                prop_assert_eq!(refund.amount, amount, "{}", ctx);
                prop_assert_eq!(refund.reason, RefundReason::Oversold, "{}", ctx);
                prop_assert_eq!(
                    applied.order.status(),
                    OrderStatus::OversoldRefunded,
                    "{}",
                    ctx
                );
                // Its allocation had lapsed (a live one always covers the
                // order), so releasing it changes no stock figure.
                prop_assert_eq!(
                    snapshot(world).await?,
                    before,
                    "{}: an oversold payment changed stock",
                    ctx
                );
                model.refunds.push((order.id, RefundReason::Oversold));
                model.orders[o].status = OrderStatus::OversoldRefunded;
            } else {
                prop_assert_eq!(&applied.outcome, &PaymentOutcome::Paid, "{}", ctx);
                prop_assert_eq!(applied.order.status(), OrderStatus::Paid, "{}", ctx);
                prop_assert_eq!(
                    applied.order.payment_ref.as_deref(),
                    Some(payment_ref.as_str()),
                    "{}",
                    ctx
                );
                for &(s, qty) in &model.orders[o].lines {
                    model.sold[s] += qty;
                }
                model.orders[o].status = OrderStatus::Paid;
            }
        }
        OrderStatus::Cancelled => {
            let PaymentOutcome::RefundedAfterCancellation { refund } = &applied.outcome else {
                return Err(TestCaseError::fail(format!(
                    "{ctx}: expected RefundedAfterCancellation, got {:?}",
                    applied.outcome
                )));
            };
            prop_assert_eq!(&refund.id, &refund_id, "{}", ctx);
            prop_assert_eq!(refund.reason, RefundReason::OrderCancelled, "{}", ctx);
            prop_assert_eq!(refund.amount, amount, "{}", ctx);
            prop_assert_eq!(applied.order.status(), OrderStatus::Refunded, "{}", ctx);
            prop_assert_eq!(snapshot(world).await?, before, "{}: stock changed", ctx);
            model.refunds.push((order.id, RefundReason::OrderCancelled));
            model.orders[o].status = OrderStatus::Refunded;
        }
        status => {
            prop_assert!(
                matches!(applied.outcome, PaymentOutcome::Ignored { .. }),
                "{}: expected Ignored, got {:?}",
                ctx,
                applied.outcome
            );
            prop_assert_eq!(applied.order.status(), status, "{}", ctx);
            prop_assert_eq!(snapshot(world).await?, before, "{}: stock changed", ctx);
        }
    }
    Ok(())
}
