//! `Stripe-Signature` verification, independent of parsing.
//!
//! The header is `t={unix seconds},v1={hex},...`: one `t`, one or more `v1`
//! (Stripe sends several while an endpoint's secret is being rolled), and
//! possibly other schemes such as `v0`, which are ignored so that a forged
//! weaker scheme cannot downgrade the check. A `v1` is the hex HMAC-SHA256,
//! keyed with the endpoint's signing secret exactly as shown in the
//! dashboard (`whsec_` prefix included), of `"{t}.{raw body}"`.

use std::time::Duration;

use commerce_core::{Timestamp, WebhookError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header Stripe signs webhook deliveries in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// How far a signed timestamp may be from the clock unless configured
/// otherwise: 300 seconds, as in Stripe's own libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC accepts keys of any length: `None` does not happen.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `Stripe-Signature` header Stripe would send for `body` signed with
/// `secret` at `timestamp` (Unix seconds): `t={timestamp},v1={hex}`.
///
/// For tests that deliver webhooks to a [`StripeGateway`](crate::StripeGateway),
/// like `WebhookSignature.generate_signature_header` in Stripe's Python
/// library.
///
/// ```
/// let header = commerce_stripe::signature_header("whsec_test", 1_767_225_600, br#"{"id":"evt_1"}"#);
/// assert!(header.starts_with("t=1767225600,v1="));
/// ```
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let hex = mac(secret.as_bytes(), timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={timestamp},v1={hex}")
}

/// The parts of a `Stripe-Signature` header this crate reads.
#[derive(Debug, PartialEq, Eq)]
struct Header<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<Header<'_>, WebhookError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::MalformedSignature)?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::MalformedSignature);
                }
                let parsed = value
                    .parse::<i64>()
                    .map_err(|_| WebhookError::MalformedSignature)?;
                timestamp = Some(parsed);
            }
            "v1" => v1.push(value),
            // v0 and any future scheme: ignored (downgrade protection).
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedSignature)?;
    if v1.is_empty() {
        return Err(WebhookError::MalformedSignature);
    }
    Ok(Header { timestamp, v1 })
}

/// Checks a delivery's `Stripe-Signature` header against its raw body.
///
/// Accepts when any `v1` matches under any of `secrets` (rotation), compared
/// in constant time, and the signed timestamp is within `tolerance` of `now`
/// in either direction. Returns the signed timestamp.
///
/// # Errors
///
/// - [`WebhookError::MissingSignature`]: no header, or an empty one;
/// - [`WebhookError::MalformedSignature`]: not `key=value` pairs, no `t`, a
///   `t` that is not an integer, two `t`, or no `v1`;
/// - [`WebhookError::BadSignature`]: no `v1` matches under any secret;
/// - [`WebhookError::TimestampOutOfTolerance`]: a genuine signature, too old
///   or too far in the future (a replay, or a badly wrong clock).
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    secrets: &[impl AsRef<[u8]>],
    now: Timestamp,
    tolerance: Duration,
) -> Result<i64, WebhookError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(WebhookError::MissingSignature)?;
    let Header { timestamp, v1 } = parse_header(header)?;
    let candidates: Vec<Vec<u8>> = v1.iter().filter_map(|c| hex::decode(c).ok()).collect();
    let matches = secrets.iter().any(|secret| {
        mac(secret.as_ref(), timestamp, body).is_some_and(|mac| {
            candidates
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        })
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    let tolerance_seconds = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.timestamp().saturating_sub(timestamp);
    if age.checked_abs().is_none_or(|abs| abs > tolerance_seconds) {
        return Err(WebhookError::TimestampOutOfTolerance {
            age_seconds: age,
            tolerance_seconds,
        });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        assert_eq!(
            parse_header("t=12,v1=ab,v0=cd,v1=ef"),
            Ok(Header {
                timestamp: 12,
                v1: vec!["ab", "ef"]
            })
        );
        assert_eq!(
            parse_header(" t=12 , v1=ab "),
            Ok(Header {
                timestamp: 12,
                v1: vec!["ab"]
            })
        );
        for bad in [
            "nonsense",
            "t=12",
            "v1=ab",
            "t=x,v1=ab",
            "t=1,t=2,v1=ab",
            "t=12,v0=ab",
            "t=12,,v1=ab",
        ] {
            assert_eq!(
                parse_header(bad),
                Err(WebhookError::MalformedSignature),
                "{bad}"
            );
        }
    }
}
