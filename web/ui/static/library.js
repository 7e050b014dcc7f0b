/* The library: live status on every card, from one progress stream for the page. */
"use strict";

(function () {
  const { api, itemTone, eventTone, setBadge, activity, follow } = window.autolog;
  const cards = new Map();
  document.querySelectorAll(".card[data-item-id]").forEach((card) => cards.set(card.dataset.itemId, card));

  /** Show an item document (GET /items/{id}) on its card: status, tone, error. */
  function showItem(card, item) {
    setBadge(card.querySelector('[data-role="status"]'), item.status, itemTone(item));
    const error = card.querySelector('[data-role="error"]');
    error.textContent = item.error ? item.error.type + ": " + item.error.message : "";
    error.hidden = !item.error;
  }

  if (cards.size) {
    follow("/ui/progress?ids=" + encodeURIComponent([...cards.keys()].join(",")), (event) => {
      const card = cards.get(event.item_id);
      if (!card) return;
      card.querySelector('[data-role="activity"]').textContent = event.final ? "" : activity(event);
      if (event.status) setBadge(card.querySelector('[data-role="status"]'), event.status, eventTone(event));
      // A step ended: the error shown may have changed (recorded, or cleared by a successful step).
      if (["succeeded", "failed", "dead_lettered", "skipped"].includes(event.state)) {
        api("GET", "/items/" + encodeURIComponent(event.item_id)).then((item) => showItem(card, item), () => {});
      }
    });
  }
})();
