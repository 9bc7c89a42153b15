// The marketplace's script: quantity changes on the cart page are posted
// in the background and the page's main content is replaced by the
// answer, so the totals and the promotion panel change without a reload.
// Without JavaScript the same forms post and redirect back (PRG).
"use strict";

function announce(text) {
  const status = document.getElementById("live-status");
  if (status) status.textContent = text;
}

async function submitLive(form) {
  const focused = document.activeElement && document.activeElement.id;
  let response;
  try {
    response = await fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      headers: { accept: "text/html" },
    });
  } catch (_) {
    form.submit();
    return;
  }
  if (!response.ok) {
    form.submit();
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector("main");
  const current = document.querySelector("main");
  if (!fresh || !current) {
    window.location.assign(response.url);
    return;
  }
  current.replaceWith(fresh);
  if (response.url && response.url !== window.location.href) {
    window.history.replaceState(null, "", response.url);
  }
  bindLiveForms();
  const again = focused && document.getElementById(focused);
  if (again) again.focus();
  const panel = document.getElementById("promotion-panel");
  if (panel) {
    const applied = panel.querySelectorAll("[data-standing=applied]").length;
    announce(`Cart updated. ${applied} ${applied === 1 ? "offer applies" : "offers apply"}.`);
  }
}

function bindLiveForms() {
  for (const form of document.querySelectorAll("form[data-live]")) {
    if (form.dataset.bound) continue;
    form.dataset.bound = "true";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitLive(form);
    });
    for (const input of form.querySelectorAll("input[type=number]")) {
      input.addEventListener("change", () => form.requestSubmit());
    }
  }
}

document.addEventListener("DOMContentLoaded", bindLiveForms);
