//! Prints an order's audit log as a table.

use commerce_core::{OrderEvent, OrderEventKind};

/// The log as an indented table, one event a line.
pub fn table(events: &[OrderEvent]) -> String {
    let mut out = format!(
        "   {:>3}  {:<5}  {:<29}  {}\n",
        "seq", "at", "status", "what happened"
    );
    for event in events {
        let status = if event.from == event.to {
            event.to.to_string()
        } else {
            format!("{} -> {}", event.from, event.to)
        };
        out.push_str(&format!(
            "   {:>3}  {:<5}  {:<29}  {}\n",
            event.seq,
            event.at.format("%H:%M").to_string(),
            status,
            describe(&event.kind)
        ));
    }
    out
}

/// One event in words.
pub fn describe(kind: &OrderEventKind) -> String {
    match kind {
        OrderEventKind::Placed { total } => format!("placed, {total} due; stock allocated"),
        OrderEventKind::PaymentSessionCreated { session } => {
            format!("payment session {} opened", short(session))
        }
        OrderEventKind::PaymentReceived { event, amount } => {
            format!("{event}: {amount} received; stock sold")
        }
        OrderEventKind::DuplicatePaymentEvent { event } => {
            format!("{event} delivered again; nothing changed")
        }
        OrderEventKind::PaymentMismatch {
            event,
            expected,
            received,
        } => format!("{event}: {received} received, {expected} due; held for review"),
        OrderEventKind::PaymentFailed { event, reason } => {
            format!("{event}: payment failed ({reason})")
        }
        OrderEventKind::PaymentEventIgnored { event, reason } => {
            format!("{event} ignored: {reason}")
        }
        OrderEventKind::Oversold {
            event, short: skus, ..
        } => {
            let skus: Vec<&str> = skus.iter().map(|sku| sku.as_str()).collect();
            format!("{event}: paid, but {} was sold meanwhile", skus.join(", "))
        }
        OrderEventKind::PaymentAfterCancellation { event, refund } => {
            format!("{event}: paid after cancellation; refund {refund}")
        }
        OrderEventKind::Expired { event: None } => {
            "payment window closed unpaid; stock released".into()
        }
        OrderEventKind::Expired { event: Some(event) } => {
            format!("{event}: payment session expired; stock released")
        }
        OrderEventKind::Cancelled { reason } => format!("cancelled: {reason}"),
        OrderEventKind::Fulfilled { .. } => "handed over".into(),
        OrderEventKind::RefundRequested { refund, amount, .. } => {
            format!("refund {refund} of {amount} requested")
        }
        OrderEventKind::RefundSucceeded { provider_ref, .. } => {
            format!("refund confirmed by the provider: {provider_ref}")
        }
        OrderEventKind::RefundFailed {
            refund, message, ..
        } => {
            format!("refund {refund} failed, will retry: {message}")
        }
        OrderEventKind::RefundedByProvider { event, amount } => {
            format!("{event}: {amount} refunded at the provider")
        }
        other => format!("{other:?}"),
    }
}

/// `test_session_0b5c…` for long provider ids, which are mostly a UUID.
fn short(id: &str) -> String {
    match id.char_indices().nth(21) {
        Some((end, _)) => format!("{}...", id.get(..end).unwrap_or(id)),
        None => id.to_owned(),
    }
}
