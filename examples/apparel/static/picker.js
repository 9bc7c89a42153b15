// The variant picker: once a size is chosen, the colours sold out in that
// size are disabled (and a disabled choice is moved to one in stock); the
// status line says how many are left, kept live by the product's
// availability stream (Server-Sent Events from commerce-http). Without
// this script the form still works: the server refuses a sold-out
// combination and says why.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-variants]")) {
    const variants = JSON.parse(form.dataset.variants || "[]");
    const status = form.querySelector("#picker-status");
    const button = form.querySelector("button[type=submit]");
    const left = (size, colour) => {
      const found = variants.find((v) => v.size === size && v.colour === colour);
      return found ? found.available : 0;
    };
    const update = () => {
      const size = form.querySelector('input[name="size"]:checked');
      if (size) {
        let firstOpen = null;
        for (const input of form.querySelectorAll('input[name="colour"]')) {
          input.disabled = left(size.value, input.value) === 0;
          if (!input.disabled && !firstOpen) firstOpen = input;
        }
        const colour = form.querySelector('input[name="colour"]:checked');
        if ((!colour || colour.disabled) && firstOpen) {
          if (colour) colour.checked = false;
          firstOpen.checked = true;
        }
      }
      const colour = form.querySelector('input[name="colour"]:checked');
      const n = size && colour ? left(size.value, colour.value) : 0;
      if (status) {
        status.textContent = size && colour
          ? (n > 0 ? `Size ${size.value}, ${colour.value}: ${n} left` : `Size ${size.value}, ${colour.value}: sold out`)
          : "Pick a size and a colour.";
      }
      if (button) button.disabled = n === 0;
    };
    form.addEventListener("change", update);
    update();
    const url = form.dataset.availabilityUrl;
    if (url && window.EventSource) {
      const source = new window.EventSource(url);
      source.addEventListener("availability", (event) => {
        for (const now of JSON.parse(event.data)) {
          const known = variants.find((v) => v.sku === now.sku);
          if (known) known.available = now.available;
        }
        update();
      });
    }
  }
});
