//! Live streams by Server-Sent Events, read from the store (not from a
//! memory buffer), so they survive restarts and see what other instances
//! of the service change.
//!
//! - An order's audit log: each SSE `id` is the event's sequence number in
//!   the log, so a reconnect with `Last-Event-ID: n` gets exactly the
//!   events after `n`. The stream ends once nothing can follow: a final
//!   status (refunded, say) with no refund awaiting the provider.
//! - The tenant's feed (admin): every order event of the shop, each SSE
//!   `id` its feed position; never ends.
//! - A product's availability: a snapshot first, then a frame whenever a
//!   variant's available count or the instant its first hold lapses
//!   (`next_release_at`) changes, including when a hold lapses (which
//!   changes availability with no write): the stream re-reads at every
//!   poll.

use std::convert::Infallible;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use commerce_core::{OrderEvent, OrderEventKind, OrderId, OrderStatus, Product, Shop, Timestamp};
use futures_util::Stream;
use futures_util::stream;
use serde::Serialize;

use crate::Http;
use crate::problem::Problem;

/// The tenant's feed after `after`, then new events as they appear; each
/// frame's id is its feed position. Never ends by itself: the feed has no
/// last event.
pub(crate) fn feed_stream(
    http: Arc<Http>,
    shop: Shop,
    after: Option<commerce_core::order::FeedPosition>,
) -> Response {
    let interval = http.poll_interval;
    let frames = stream::unfold((shop, after), move |(shop, after)| async move {
        let mut waited = false;
        loop {
            if waited {
                tokio::time::sleep(interval).await;
            }
            waited = true;
            // The store failed: end the stream; the client reconnects with
            // its Last-Event-ID and loses nothing.
            let page = shop.events_since(after, 100).await.ok()?;
            if page.items.is_empty() {
                continue;
            }
            let frames: Vec<Result<Event, Infallible>> = page
                .items
                .iter()
                .map(|item| {
                    let kind = serde_json::to_value(&item.event.kind)
                        .ok()
                        .and_then(|k| k.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                        .unwrap_or_else(|| "event".to_owned());
                    Ok(Event::default()
                        .id(item.position.to_string())
                        .event(kind)
                        .data(serde_json::to_string(item).unwrap_or_default()))
                })
                .collect();
            return Some((stream::iter(frames), (shop, page.next)));
        }
    });
    sse(futures_util::StreamExt::flatten(frames))
}

/// Whether nothing can follow `status`.
fn is_final(status: OrderStatus) -> bool {
    OrderStatus::ALL
        .into_iter()
        .all(|next| !status.can_become(next))
}

/// The frame of one audit-log event.
#[derive(Debug, Serialize)]
struct OrderFrame<'a> {
    event: &'a OrderEvent,
    status: OrderStatus,
}

fn order_frame(event: &OrderEvent) -> Event {
    let data = serde_json::to_string(&OrderFrame {
        event,
        status: event.to,
    })
    .unwrap_or_default();
    let kind = serde_json::to_value(&event.kind)
        .ok()
        .and_then(|kind| kind.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "event".to_owned());
    Event::default()
        .id(event.seq.to_string())
        .event(kind)
        .data(data)
}

/// The order's log, and whether nothing can be appended to it any more:
/// its status is final and every refund it requested has its provider's
/// confirmation in the log (a failed refund stays pending and is retried,
/// which appends another event).
///
/// Both are decided from the one read of the log, a single snapshot: a
/// refund's request is written with its event, and its confirmation with
/// its event, each in one transaction. Deciding from a separate read of
/// the refunds raced with them: read the refunds before a request
/// committed and the log after, and a refunded order looked settled while
/// its refund's answer was still to come, so the stream ended one event
/// short.
async fn read_log(shop: &Shop, order: OrderId) -> Result<(Vec<OrderEvent>, bool), Problem> {
    let events = shop.order_events(order).await?;
    let settled = events.last().is_some_and(|e| is_final(e.to)) && refunds_answered(&events);
    Ok((events, settled))
}

/// Whether every refund requested in `events` was confirmed in `events`.
fn refunds_answered(events: &[OrderEvent]) -> bool {
    events.iter().all(|requested| match &requested.kind {
        OrderEventKind::RefundRequested { refund, .. } => events.iter().any(|e| {
            matches!(&e.kind, OrderEventKind::RefundSucceeded { refund: done, .. } if done == refund)
        }),
        _ => true,
    })
}

/// The sequence number a reconnecting client last saw.
fn last_event_id(headers: &HeaderMap) -> Result<u32, Problem> {
    match headers.get("last-event-id") {
        None => Ok(0),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| Problem::invalid("/last_event_id", "not a sequence number")),
    }
}

/// The order's events after the client's `Last-Event-ID`, then new ones
/// as they are appended, until the order can change no more.
pub(crate) async fn order_stream(
    http: Arc<Http>,
    shop: Shop,
    order: OrderId,
    headers: &HeaderMap,
) -> Result<Response, Problem> {
    let after = last_event_id(headers)?;
    shop.order(order).await?;
    if after > 0 {
        let (events, settled) = read_log(&shop, order).await?;
        if settled && events.iter().all(|e| e.seq <= after) {
            // Nothing more will come: 204 tells EventSource to stop.
            return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
        }
    }
    let interval = http.poll_interval;
    let state = (shop, order, after, false);
    let frames = stream::unfold(state, move |(shop, order, after, done)| async move {
        if done {
            return None;
        }
        let mut waited = false;
        loop {
            if waited {
                tokio::time::sleep(interval).await;
            }
            waited = true;
            // The store failed: end the stream; the client reconnects with
            // its Last-Event-ID and loses nothing.
            let (events, finished) = read_log(&shop, order).await.ok()?;
            let new: Vec<Event> = events
                .iter()
                .filter(|e| e.seq > after)
                .map(order_frame)
                .collect();
            let last = events.last().map_or(after, |e| e.seq.max(after));
            if !new.is_empty() {
                let frames: Vec<Result<Event, Infallible>> = new.into_iter().map(Ok).collect();
                return Some((stream::iter(frames), (shop, order, last, finished)));
            }
            if finished {
                return None;
            }
        }
    });
    let flat = futures_util::StreamExt::flatten(frames);
    Ok(sse(flat))
}

/// How much of each variant can be bought now, and when a held unit may
/// come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct VariantAvailability {
    pub(crate) sku: commerce_core::Sku,
    pub(crate) available: u32,
    pub(crate) state: &'static str,
    /// When the first hold on this variant lapses (RFC 3339): the earliest
    /// expiry among the live reservations of carts and allocations of
    /// orders awaiting payment, so a page can say "held by another buyer,
    /// may come back at 14:15". The holder may still renew the hold or pay
    /// before then. Absent when nothing holds the variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = DateTime, required = false)]
    pub(crate) next_release_at: Option<Timestamp>,
}

/// The availability of every variant of `product` now.
pub(crate) async fn availability(
    shop: &Shop,
    product: &Product,
) -> Result<Vec<VariantAvailability>, commerce_core::Error> {
    let mut all = Vec::with_capacity(product.variants().len());
    for variant in product.variants() {
        let (level, next_release_at) = shop.stock_and_next_release(variant.sku()).await?;
        let available = level.available();
        let state = match available {
            0 if level.on_hand > 0 => "held",
            0 => "sold_out",
            1..=3 => "low",
            _ => "in_stock",
        };
        all.push(VariantAvailability {
            sku: variant.sku().clone(),
            available,
            state,
            next_release_at,
        });
    }
    Ok(all)
}

/// The product's availability now, then again whenever it changes.
pub(crate) fn availability_stream(http: Arc<Http>, shop: Shop, product: Product) -> Response {
    let interval = http.poll_interval;
    let frames = stream::unfold(
        (shop, product, None::<Vec<VariantAvailability>>),
        move |(shop, product, last)| async move {
            let mut first = last.is_none();
            loop {
                if !first {
                    tokio::time::sleep(interval).await;
                }
                first = false;
                let now = availability(&shop, &product).await.ok()?;
                if last.as_ref() != Some(&now) {
                    let data = serde_json::to_string(&now).unwrap_or_default();
                    let frame: Result<Event, Infallible> =
                        Ok(Event::default().event("availability").data(data));
                    return Some((frame, (shop, product, Some(now))));
                }
            }
        },
    );
    sse(frames)
}

fn sse<S>(frames: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(frames)
        .keep_alive(KeepAlive::default())
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// Whether the client asked for an event stream.
pub(crate) fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("text/event-stream"))
}

#[cfg(test)]
mod tests {
    use commerce_core::{
        Currency, Money, OrderEvent, OrderEventKind, OrderId, OrderStatus, RefundFailureKind,
        RefundId, Timestamp,
    };

    use super::{is_final, refunds_answered};

    fn event(seq: u32, to: OrderStatus, kind: OrderEventKind) -> OrderEvent {
        OrderEvent {
            order: OrderId::new(),
            seq,
            at: Timestamp::UNIX_EPOCH,
            from: OrderStatus::Paid,
            to,
            kind,
        }
    }

    #[test]
    fn a_refund_settles_the_log_only_with_its_confirmation() {
        let refund = RefundId::parse("rf_1").unwrap();
        let requested = event(
            4,
            OrderStatus::Refunded,
            OrderEventKind::RefundRequested {
                refund: refund.clone(),
                amount: Money::new(30_000, Currency::EUR),
                lines: vec![],
            },
        );
        let failed = event(
            5,
            OrderStatus::Refunded,
            OrderEventKind::RefundFailed {
                refund: refund.clone(),
                message: "provider down".to_owned(),
                kind: RefundFailureKind::Other,
            },
        );
        let other = event(
            6,
            OrderStatus::Refunded,
            OrderEventKind::RefundSucceeded {
                refund: RefundId::parse("rf_2").unwrap(),
                provider_ref: "re_2".to_owned(),
            },
        );
        let succeeded = event(
            7,
            OrderStatus::Refunded,
            OrderEventKind::RefundSucceeded {
                refund,
                provider_ref: "re_1".to_owned(),
            },
        );
        assert!(is_final(OrderStatus::Refunded));
        assert!(!refunds_answered(std::slice::from_ref(&requested)));
        assert!(!refunds_answered(&[requested.clone(), failed.clone()]));
        assert!(!refunds_answered(&[requested.clone(), other.clone()]));
        assert!(refunds_answered(&[requested, failed, other, succeeded]));
    }
}
