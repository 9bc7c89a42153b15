// The shops' only script: countdowns on held cart lines, live availability
// badges and live order statuses, all from data- attributes (no inline
// script, so the pages' Content-Security-Policy stays `script-src 'self'`).
"use strict";

function pad(n) { return String(n).padStart(2, "0"); }

function startCountdowns() {
  for (const el of document.querySelectorAll("[data-expires-in]")) {
    const end = Date.now() + Number(el.dataset.expiresIn) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      el.textContent = left > 0 ? `${Math.floor(left / 60)}:${pad(left % 60)}` : "lapsed";
      if (left > 0) setTimeout(tick, 1000);
    };
    tick();
  }
}

function clockTime(iso) {
  const at = new Date(iso);
  return `${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())} UTC`;
}

function badgeText(variant) {
  if (variant.available > 0) return `${variant.available} available`;
  if (variant.state === "held") {
    return variant.next_release_at
      ? `held by another buyer, may come back at ${clockTime(variant.next_release_at)}`
      : "held by another buyer";
  }
  return "sold";
}

function startAvailability() {
  for (const el of document.querySelectorAll("[data-availability-stream]")) {
    const source = new EventSource(el.dataset.availabilityStream);
    source.addEventListener("availability", (event) => {
      for (const variant of JSON.parse(event.data)) {
        for (const badge of document.querySelectorAll(`[data-badge-sku="${CSS.escape(variant.sku)}"]`)) {
          const held = badge.dataset.heldByYou === "true";
          if (held) continue;
          badge.textContent = badgeText(variant);
          badge.className = `badge ${variant.available > 0 ? "available" : variant.state === "held" ? "held" : "sold"}`;
        }
      }
    });
  }
}

function startOrderStream() {
  const el = document.querySelector("[data-order-stream]");
  if (!el) return;
  const labels = JSON.parse(el.dataset.labels || "{}");
  const status = document.getElementById("order-status");
  const log = document.getElementById("order-log");
  const source = new EventSource(el.dataset.orderStream);
  const seen = new Set(Array.from(document.querySelectorAll("[data-seq]"), (row) => row.dataset.seq));
  const onFrame = (event) => {
    const frame = JSON.parse(event.data);
    // The stream starts with the whole log: the events the page was rendered
    // with are already in its status and log, and replaying them would flip
    // the status (a live region) back through old values.
    if (seen.has(String(frame.event.seq))) return;
    seen.add(String(frame.event.seq));
    if (status) {
      status.textContent = labels[frame.status] || frame.status;
      status.dataset.status = frame.status;
    }
    // What only makes sense in one status (a "Pay now" link) goes when the order leaves it.
    for (const part of el.querySelectorAll("[data-while-status]")) {
      part.hidden = part.dataset.whileStatus !== frame.status;
    }
    if (log) {
      const row = document.createElement("li");
      row.dataset.seq = frame.event.seq;
      row.textContent = `${clockTime(frame.event.at)}: ${frame.event.kind.type.replaceAll("_", " ")} (${labels[frame.event.to] || frame.event.to})`;
      log.appendChild(row);
    }
  };
  for (const kind of ["placed", "payment_session_created", "payment_received", "duplicate_payment_event",
    "payment_mismatch", "payment_failed", "payment_event_ignored", "oversold", "payment_after_cancellation",
    "expired", "cancelled", "fulfilled", "refund_requested", "refund_succeeded", "refund_failed",
    "refunded_by_provider", "event"]) {
    source.addEventListener(kind, onFrame);
  }
  source.addEventListener("message", onFrame);
}

document.addEventListener("DOMContentLoaded", () => {
  startCountdowns();
  startAvailability();
  startOrderStream();
});
