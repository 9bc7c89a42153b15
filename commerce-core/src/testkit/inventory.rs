//! Stock and reservations: races for the last units, expiry, idempotent holds, the adjustment
//! history, when a held unit may come back.

use super::{
    AdjustmentKind, Arc, Barrier, Cart, Currency, Duration, Error, Harness, HashMap,
    PAYMENT_WINDOW, PaymentOutcome, Quantity, Sku, StoreFactory, TTL, idempotency_key, qty,
};

/// This area's scenarios, stamped by
/// [`conformance_tests!`](crate::conformance_tests). The kit's own tests
/// fail when a `pub async fn` scenario of this file is missing here.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_inventory {
    ($($mode:tt)*) => {
        $crate::conformance_tests! {@area [$($mode)*] inventory:
            last_unit_race_has_one_winner,
            five_units_fifty_racers_have_five_winners,
            a_thousand_racers_for_one_unit_have_one_winner,
            a_thousand_racers_for_fifty_units_have_fifty_winners,
            random_racers_over_many_skus_never_oversell,
            reservation_expiry_frees_stock_at_ttl_and_sweep_removes_it,
            setting_same_quantity_twice_reserves_once,
            stock_adjustments_are_recorded,
            hostile_stock_notes_are_refused,
            a_receipt_with_a_reference_counts_once,
            next_release_is_the_earliest_live_hold,
            next_release_follows_holds_through_release_checkout_and_payment,
        }
    };
}

/// Races `racers` carts for one unit each of `sku`; returns the results.
async fn race_for(h: &Harness, sku: &Sku, racers: usize) -> Vec<Result<Cart, Error>> {
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = Vec::with_capacity(racers);
    for _ in 0..racers {
        let shop = h.shop.clone();
        let sku = sku.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let cart = shop.create_cart(Currency::AUD).await.unwrap();
            barrier.wait().await;
            shop.set_line(cart.id, &sku, Quantity::ONE).await
        }));
    }
    let mut results = Vec::with_capacity(racers);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

async fn assert_race(factory: &dyn StoreFactory, on_hand: u32, racers: usize) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RACE", 100_000, on_hand).await;
    let results = race_for(&h, &sku, racers).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        winners, on_hand as usize,
        "winners for {on_hand} units among {racers} racers"
    );
    for loser in results.iter().filter_map(|r| r.as_ref().err()) {
        match loser {
            Error::InsufficientStock {
                sku: s,
                requested,
                available,
            } => {
                assert_eq!(s, &sku);
                assert_eq!(*requested, 1);
                assert_eq!(
                    *available, 0,
                    "a loser must be told the real available count"
                );
            }
            other => panic!("a loser got {other:?} instead of InsufficientStock"),
        }
    }
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(
        (level.on_hand, level.reserved, level.available()),
        (on_hand, on_hand, 0)
    );
}

/// 20 carts race for a SKU with one unit on hand: exactly one reservation
/// succeeds; 19 fail with `available = 0`.
pub async fn last_unit_race_has_one_winner(factory: &dyn StoreFactory) {
    assert_race(factory, 1, 20).await;
}

/// 50 carts race for a SKU with five units on hand: exactly five succeed.
pub async fn five_units_fifty_racers_have_five_winners(factory: &dyn StoreFactory) {
    assert_race(factory, 5, 50).await;
}

/// 1,000 carts race for a SKU with one unit on hand: exactly one wins;
/// 999 are told `available = 0`.
pub async fn a_thousand_racers_for_one_unit_have_one_winner(factory: &dyn StoreFactory) {
    assert_race(factory, 1, 1_000).await;
}

/// 1,000 carts race for a SKU with fifty units on hand: exactly fifty win;
/// 950 are told `available = 0`.
pub async fn a_thousand_racers_for_fifty_units_have_fifty_winners(factory: &dyn StoreFactory) {
    assert_race(factory, 50, 1_000).await;
}

/// 200 tasks with pseudo-random quantities over 20 SKUs reserve, some check
/// out and some pay, all at once. Afterwards, for every SKU: live
/// reservations + allocated + sold never exceed stock received, and each
/// figure equals what the winning tasks account for.
pub async fn random_racers_over_many_skus_never_oversell(factory: &dyn StoreFactory) {
    const SKUS: usize = 20;
    const TASKS: usize = 200;
    let h = Harness::new(factory).await;
    let mut skus = Vec::with_capacity(SKUS);
    let mut received = HashMap::new();
    for i in 0..SKUS {
        let on_hand = (i % 7) as u32 + 1;
        let sku = h
            .stocked(
                &format!("SKU-{i:02}"),
                1_000 + i64::try_from(i).unwrap(),
                on_hand,
            )
            .await;
        received.insert(sku.clone(), on_hand);
        skus.push(sku);
    }
    // A fixed xorshift sequence, so a failure reproduces.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::with_capacity(TASKS);
    for task in 0..TASKS {
        let sku = skus[(next() % SKUS as u64) as usize].clone();
        let quantity = (next() % 3) as u32 + 1;
        let h = h.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let cart = h.shop.create_cart(Currency::AUD).await.unwrap();
            barrier.wait().await;
            match h.shop.set_line(cart.id, &sku, qty(quantity)).await {
                Ok(_) => {}
                Err(Error::InsufficientStock {
                    available,
                    requested,
                    ..
                }) => {
                    assert!(available < requested);
                    return (sku, quantity, "refused");
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
            if task % 3 != 0 {
                return (sku, quantity, "reserved");
            }
            let key = format!("key-{task}");
            let order = h
                .shop
                .checkout(cart.id, &idempotency_key(&key))
                .await
                .unwrap()
                .order;
            if task % 2 != 0 {
                return (sku, quantity, "allocated");
            }
            let outcome = h.deliver(&h.paid(&order, &format!("evt_{task}"))).await;
            assert_eq!(outcome, PaymentOutcome::Paid);
            (sku, quantity, "sold")
        }));
    }
    let mut expected: HashMap<(Sku, &str), u32> = HashMap::new();
    for task in tasks {
        let (sku, quantity, fate) = task.await.unwrap();
        *expected.entry((sku, fate)).or_default() += quantity;
    }
    for sku in &skus {
        let level = h.shop.stock(sku).await.unwrap();
        let sold = h.sold(&h.shop, sku).await;
        let get = |fate| expected.get(&(sku.clone(), fate)).copied().unwrap_or(0);
        let received = received[sku];
        assert!(
            i64::from(level.reserved) + i64::from(level.allocated) + sold <= i64::from(received),
            "{sku}: {level:?} sold {sold} received {received}"
        );
        assert_eq!(
            i64::from(level.on_hand),
            i64::from(received) - sold,
            "{sku}"
        );
        assert_eq!(level.reserved, get("reserved"), "{sku} reserved");
        assert_eq!(level.allocated, get("allocated"), "{sku} allocated");
        assert_eq!(sold, i64::from(get("sold")), "{sku} sold");
    }
}

/// A reservation stops counting the instant the clock reaches its expiry,
/// before any sweep; the sweep then deletes it; a checkout that relied on it
/// is refused.
pub async fn reservation_expiry_frees_stock_at_ttl_and_sweep_removes_it(
    factory: &dyn StoreFactory,
) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-EXPIRY", 50_000, 1).await;
    let first = h.cart_with(&sku, 1).await;
    let second = h.shop.create_cart(Currency::AUD).await.unwrap();
    assert!(matches!(
        h.shop.set_line(second.id, &sku, Quantity::ONE).await,
        Err(Error::InsufficientStock { available: 0, .. })
    ));

    h.clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(
        h.shop.stock(&sku).await.unwrap().available(),
        0,
        "still held one second before expiry"
    );
    assert!(
        h.shop
            .set_line(second.id, &sku, Quantity::ONE)
            .await
            .is_err()
    );

    h.clock.advance(Duration::from_secs(1));
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!(
        (level.reserved, level.available()),
        (0, 1),
        "free at the instant of expiry"
    );
    let inventory = h.shop.scope().inventory();
    assert_eq!(
        inventory.cart_reservations(first.id).await.unwrap().len(),
        1,
        "not swept yet"
    );

    let report = h.shop.sweep().await.unwrap();
    assert_eq!(report.reservations_removed, 1);
    assert!(
        inventory
            .cart_reservations(first.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.shop.sweep().await.unwrap().reservations_removed, 0);

    h.shop
        .set_line(second.id, &sku, Quantity::ONE)
        .await
        .unwrap();
    assert!(matches!(
        h.shop.checkout(first.id, &idempotency_key("late")).await,
        Err(Error::ReservationLapsed { sku: s }) if s == sku
    ));
}

/// Setting the same quantity twice reserves once; lowering releases the
/// difference; zero removes the line and its reservation.
pub async fn setting_same_quantity_twice_reserves_once(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("TEE-M", 2_500, 5).await;
    let a = h.shop.create_cart(Currency::AUD).await.unwrap();
    let b = h.shop.create_cart(Currency::AUD).await.unwrap();
    h.shop.set_line(a.id, &sku, qty(2)).await.unwrap();
    let cart = h.shop.set_line(a.id, &sku, qty(2)).await.unwrap();
    assert_eq!(cart.lines.len(), 1);
    assert_eq!(cart.lines[0].quantity, qty(2));
    assert_eq!(h.shop.stock(&sku).await.unwrap().reserved, 2);
    let held = h
        .shop
        .scope()
        .inventory()
        .cart_reservations(a.id)
        .await
        .unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].quantity, qty(2));

    h.shop.set_line(b.id, &sku, qty(3)).await.unwrap();
    match h.shop.set_line(b.id, &sku, qty(4)).await {
        Err(Error::InsufficientStock {
            requested: 4,
            available: 3,
            ..
        }) => {}
        other => panic!("expected available 3, got {other:?}"),
    }
    assert_eq!(
        h.shop.cart(b.id).await.unwrap().lines[0].quantity,
        qty(3),
        "a refusal changes nothing"
    );

    h.shop.set_line(a.id, &sku, qty(1)).await.unwrap();
    h.shop.set_line(b.id, &sku, qty(4)).await.unwrap();
    let cart = h.shop.remove_line(a.id, &sku).await.unwrap();
    assert!(cart.lines.is_empty());
    assert!(
        h.shop
            .scope()
            .inventory()
            .cart_reservations(a.id)
            .await
            .unwrap()
            .is_empty()
    );
    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.reserved, level.available()), (4, 1));
}

/// Stock receipts and corrections are recorded; a correction below what is
/// held is refused with the held count.
pub async fn stock_adjustments_are_recorded(factory: &dyn StoreFactory) {
    let h = Harness::new(factory).await;
    let sku = h.stocked("RAM-32GB", 9_000, 0).await;
    h.shop
        .receive_stock(&sku, qty(3), Some("delivery 1".into()))
        .await
        .unwrap();
    let level = h
        .shop
        .correct_stock(&sku, qty(2), Some("one was faulty".into()))
        .await
        .unwrap();
    assert_eq!(level.on_hand, 2);
    h.cart_with(&sku, 2).await;
    match h.shop.correct_stock(&sku, qty(1), None).await {
        Err(Error::StockBelowHeld {
            requested: 1,
            held: 2,
            ..
        }) => {}
        other => panic!("expected StockBelowHeld, got {other:?}"),
    }
    let history = h.shop.stock_adjustments(&sku).await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|a| (a.kind.clone(), a.delta, a.on_hand_after))
        .collect();
    assert_eq!(
        summary,
        vec![
            (AdjustmentKind::Received, 3, 3),
            (AdjustmentKind::Corrected, -1, 2)
        ]
    );
    assert_eq!(history[0].note.as_deref(), Some("delivery 1"));
}

/// A stock note not every store can keep (a NUL character) or past its
/// length is refused with the same typed error by the facade and by the
/// store called directly, on receipt and on correction, and changes
/// nothing. Non-ASCII text and long words are fine in a note.
pub async fn hostile_stock_notes_are_refused(factory: &dyn StoreFactory) {
    use crate::clock::Clock;
    use crate::text::{TextField, TextReason};

    let h = Harness::new(factory).await;
    let sku = h.stocked("SSD-2TB", 15_000, 2).await;
    let before = h.shop.stock_adjustments(&sku).await.unwrap();
    let refused =
        |result: Result<crate::inventory::StockLevel, Error>, reason: TextReason| match result {
            Err(Error::InvalidText {
                field: TextField::StockNote,
                reason: found,
            }) => assert_eq!(found, reason),
            other => panic!("expected InvalidText {{ stock note, {reason} }}, got {other:?}"),
        };
    let nul = || Some("pallet\0 3".to_owned());
    let at = TextReason::NulByte { offset: 6 };
    refused(h.shop.receive_stock(&sku, qty(1), nul()).await, at);
    refused(h.shop.correct_stock(&sku, qty(5), nul()).await, at);
    let store = h.shop.scope().inventory();
    let now = h.clock.now();
    refused(store.receive(&sku, qty(1), None, nul(), now).await, at);
    refused(store.correct(&sku, qty(5), nul(), now).await, at);
    let long = || Some("n".repeat(16_385));
    let too_long = TextReason::TooLong {
        length: 16_385,
        max: 16_384,
    };
    refused(
        store.receive(&sku, qty(1), None, long(), now).await,
        too_long,
    );
    refused(store.correct(&sku, qty(5), long(), now).await, too_long);

    let level = h.shop.stock(&sku).await.unwrap();
    assert_eq!((level.on_hand, level.reserved), (2, 0), "nothing changed");
    assert_eq!(h.shop.stock_adjustments(&sku).await.unwrap(), before);

    let fine = format!("livré à l'entrepôt {}", "w".repeat(3_000));
    h.shop
        .receive_stock(&sku, qty(1), Some(fine.clone()))
        .await
        .unwrap();
    let history = h.shop.stock_adjustments(&sku).await.unwrap();
    assert_eq!(history.last().and_then(|a| a.note.clone()), Some(fine));
}

/// A receipt of 5 units under the reference `po-1`, sent 3 times in a row
/// and then 10 times at once, counts once: 5 on hand, one `Received`
/// adjustment carrying the reference. Another reference adds; the same
/// reference on another SKU is another receipt.
pub async fn a_receipt_with_a_reference_counts_once(factory: &dyn StoreFactory) {
    const RACERS: usize = 10;
    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-RECEIPT", 10_000, 0).await;
    let other = h.stocked("CPU-RECEIPT", 5_000, 0).await;
    let reference = idempotency_key("po-1");
    for _ in 0..3 {
        let level = h
            .shop
            .receive_stock_once(&sku, qty(5), &reference, None)
            .await
            .unwrap();
        assert_eq!(level.on_hand, 5);
    }
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let (shop, sku, reference, barrier) = (
                h.shop.clone(),
                sku.clone(),
                reference.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                shop.receive_stock_once(&sku, qty(5), &reference, None)
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().on_hand, 5);
    }
    let received: Vec<_> = h
        .shop
        .stock_adjustments(&sku)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == AdjustmentKind::Received)
        .collect();
    assert_eq!(received.len(), 1, "counted once");
    assert_eq!(received[0].reference.as_ref(), Some(&reference));
    let more = h
        .shop
        .receive_stock_once(&sku, qty(2), &idempotency_key("po-2"), None)
        .await
        .unwrap();
    assert_eq!(more.on_hand, 7);
    let elsewhere = h
        .shop
        .receive_stock_once(&other, qty(3), &reference, None)
        .await
        .unwrap();
    assert_eq!(elsewhere.on_hand, 3);
    assert!(matches!(
        h.shop
            .receive_stock_once(&Sku::parse("NOPE").unwrap(), qty(1), &reference, None)
            .await,
        Err(Error::NotFound { .. })
    ));
}

/// `next_release` reports the earliest expiry among a SKU's live holds:
/// not a later hold's, not another SKU's, not another tenant's (whose
/// hold on a SKU of the same name lapses first), and not a hold that
/// lapsed at or before `now`, before any sweep. With nothing held it is
/// `None`; an unknown SKU is `NotFound`, through the facade and the store.
pub async fn next_release_is_the_earliest_live_hold(factory: &dyn StoreFactory) {
    use crate::clock::Clock;

    let h = Harness::new(factory).await;
    let shop_b = h.other_shop("shop-b");
    let sku = h.stocked("GPU-NEXT", 80_000, 3).await;
    let other = h.stocked("GPU-ELSE", 80_000, 1).await;
    let sku_b = Harness::stocked_in(&shop_b, "GPU-NEXT", 80_000, 1).await;
    let store = h.shop.scope().inventory();
    let minute = Duration::from_secs(60);
    let t0 = h.clock.now();
    let at = |after: Duration| t0 + after;
    assert_eq!(h.shop.next_release(&sku).await.unwrap(), None, "no holds");

    // Tenant B's hold on its own GPU-NEXT lapses first: at t0 + TTL.
    let cart_b = shop_b.create_cart(Currency::AUD).await.unwrap();
    shop_b.set_line(cart_b.id, &sku_b, qty(1)).await.unwrap();
    h.clock.advance(minute);
    let first = h.cart_with(&sku, 1).await; // until t0 + 1m + TTL
    h.clock.advance(4 * minute);
    h.cart_with(&sku, 2).await; // until t0 + 5m + TTL
    h.clock.advance(minute);
    h.cart_with(&other, 1).await; // until t0 + 6m + TTL, on another SKU

    assert_eq!(
        h.shop.next_release(&sku).await.unwrap(),
        Some(at(minute + TTL)),
        "the earliest of this tenant's holds of this SKU"
    );
    assert_eq!(
        h.shop.next_release(&other).await.unwrap(),
        Some(at(6 * minute + TTL))
    );
    assert_eq!(
        shop_b.next_release(&sku_b).await.unwrap(),
        Some(at(TTL)),
        "each tenant sees its own holds"
    );
    let (level, next) = h.shop.stock_and_next_release(&sku).await.unwrap();
    assert_eq!((level.reserved, level.available()), (3, 0));
    assert_eq!(next, Some(at(minute + TTL)));

    // The store, at instants around the first expiry.
    let lapse = at(minute + TTL);
    assert_eq!(
        store
            .next_release(&sku, lapse - Duration::from_secs(1))
            .await
            .unwrap(),
        Some(lapse),
        "live one second before it lapses"
    );
    assert_eq!(
        store.next_release(&sku, lapse).await.unwrap(),
        Some(at(5 * minute + TTL)),
        "a hold expiring at now does not count"
    );

    // The first hold lapses: the next one is reported, before any sweep.
    h.clock.set(lapse);
    assert_eq!(
        h.shop.next_release(&sku).await.unwrap(),
        Some(at(5 * minute + TTL))
    );
    assert_eq!(
        store.cart_reservations(first.id).await.unwrap().len(),
        1,
        "not swept yet"
    );
    h.clock.set(at(5 * minute + TTL));
    assert_eq!(h.shop.next_release(&sku).await.unwrap(), None);
    h.shop.sweep().await.unwrap();
    assert_eq!(h.shop.next_release(&sku).await.unwrap(), None);
    assert_eq!(h.shop.stock(&sku).await.unwrap().available(), 3);

    let unknown = Sku::parse("NO-SUCH-SKU").unwrap();
    assert!(matches!(
        h.shop.next_release(&unknown).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.next_release(&unknown, h.clock.now()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        h.shop.stock_and_next_release(&unknown).await,
        Err(Error::NotFound { .. })
    ));
}

/// `next_release` follows a unit through its holds: a released
/// reservation is gone at once; checkout turns the reservation into the
/// order's allocation, reported until the payment window closes; paying
/// sells the unit and cancelling releases it, and neither leaves anything
/// to report; an unpaid order's allocation stops counting when its window
/// closes, before the sweep expires the order.
pub async fn next_release_follows_holds_through_release_checkout_and_payment(
    factory: &dyn StoreFactory,
) {
    use crate::clock::Clock;

    let h = Harness::new(factory).await;
    let sku = h.stocked("GPU-FOLLOW", 60_000, 1).await;
    let minute = Duration::from_secs(60);
    let next = async || h.shop.next_release(&sku).await.unwrap();

    // Released.
    let cart = h.cart_with(&sku, 1).await;
    assert_eq!(next().await, Some(h.clock.now() + TTL));
    h.shop.remove_line(cart.id, &sku).await.unwrap();
    assert_eq!(next().await, None, "a released hold is gone at once");

    // Checked out: the allocation holds the unit for the payment window.
    h.clock.advance(minute);
    let order = h.order_for(&sku, 1, "follow-paid").await;
    assert_eq!(order.payment_expires_at, h.clock.now() + PAYMENT_WINDOW);
    assert_eq!(next().await, Some(order.payment_expires_at));
    let (level, at) = h.shop.stock_and_next_release(&sku).await.unwrap();
    assert_eq!((level.reserved, level.allocated), (0, 1));
    assert_eq!(at, Some(order.payment_expires_at));

    // Paid: sold, nothing held.
    h.clock.advance(minute);
    assert_eq!(
        h.deliver(&h.paid(&order, "evt_follow")).await,
        PaymentOutcome::Paid
    );
    assert_eq!(next().await, None, "a sold unit is not held");
    assert_eq!(h.shop.stock(&sku).await.unwrap().on_hand, 0);

    // Cancelled.
    h.shop.receive_stock(&sku, qty(1), None).await.unwrap();
    let cancelled = h.order_for(&sku, 1, "follow-cancelled").await;
    assert_eq!(next().await, Some(cancelled.payment_expires_at));
    h.shop
        .cancel_order(cancelled.id, "changed their mind")
        .await
        .unwrap();
    assert_eq!(next().await, None, "a cancelled order holds nothing");

    // Unpaid: the allocation lapses with the window, before any sweep.
    let unpaid = h.order_for(&sku, 1, "follow-unpaid").await;
    assert_eq!(next().await, Some(unpaid.payment_expires_at));
    h.clock.set(unpaid.payment_expires_at);
    assert_eq!(next().await, None, "a lapsed allocation is not reported");
    let report = h.shop.sweep().await.unwrap();
    assert_eq!(report.orders_expired, vec![unpaid.id]);
    assert_eq!(next().await, None);
    assert_eq!(h.shop.stock(&sku).await.unwrap().available(), 1);
}
