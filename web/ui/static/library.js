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
      if (event.status) {
        const badge = card.querySelector('[data-role="status"]');
        // Most events repeat the status (running, queued…): only a move changes the counts.
        const moved = badge.textContent !== event.status;
        setBadge(badge, event.status, eventTone(event));
        if (moved) document.dispatchEvent(new CustomEvent("autolog:status-moved"));
      }
      // A step ended: the error shown may have changed (recorded, or cleared by a successful step).
      if (["succeeded", "failed", "dead_lettered", "skipped"].includes(event.state)) {
        api("GET", "/items/" + encodeURIComponent(event.item_id)).then((item) => showItem(card, item), () => {});
      }
    });
  }
})();

/* The filter chips and the item count follow the library: GET /ui/counts again soon after a card's item moves,
   and every few seconds while the page is shown (items not on this page move too, and new ones come in). */
(function () {
  const { api } = window.autolog;
  const chips = document.querySelectorAll(".filters .chip[data-status]");
  const title = document.getElementById("library-count");
  const EVERY_MS = 5000;
  const SOON_MS = 300;
  let timer = null;
  let due = Infinity;  // when the timer fires (the page's clock, in ms)
  let asking = false;
  let again = false;
  if (!chips.length) return;

  function show(counts) {
    chips.forEach((chip) => {
      const count = chip.dataset.status === "" ? counts.total : counts.statuses[chip.dataset.status];
      if (count !== undefined) chip.querySelector(".chip-count").textContent = String(count);
    });
    title.textContent = counts.total + (counts.total === 1 ? " item" : " items");
  }

  /** Ask in ms, unless a timer already asks sooner: moves in a quick row must not keep pushing the answer back. */
  function askIn(ms) {
    const at = Date.now() + ms;
    if (timer !== null && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(() => {
      timer = null;
      due = Infinity;
      ask();
    }, ms);
  }

  function ask() {
    if (document.hidden) return;  // asked again when the page is shown
    if (asking) {  // one request at a time; a move seen meanwhile asks once more after it
      again = true;
      return;
    }
    asking = true;
    api("GET", "/ui/counts").then(show, () => {}).finally(() => {
      asking = false;
      askIn(again ? 0 : EVERY_MS);
      again = false;
    });
  }

  document.addEventListener("autolog:status-moved", () => askIn(SOON_MS));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) askIn(0); });
  askIn(EVERY_MS);
})();

/* Search: GET /items?q= from the JSON API, each hit with its snippet and a link to its frame's timecode. */
(function () {
  const { api } = window.autolog;
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-q");
  const section = document.getElementById("search-results");
  const list = document.getElementById("search-hits");
  const title = document.getElementById("search-title");
  const more = document.getElementById("search-more");
  const everywhere = document.getElementById("search-everywhere");
  const audioOnlyMark = document.getElementById("audio-only-mark");
  const fields = { id: "id", source: "file", description: "description", keywords: "keywords", transcript: "speech" };
  let query = "";
  let nextOffset = null;

  /** The item page link of a hit: at its frame record (which shows the timecode) when it has one. */
  function hitLink(hit) {
    const page = "/ui/items/" + encodeURIComponent(hit.item_id);
    return hit.frame === null ? page : page + "#frame-" + hit.frame;
  }

  /** The picture of a hit: its frame or poster, or for an audio-only item (which has neither) the library's mark. */
  function hitPicture(hit) {
    if (hit.media_kind === "audio") return audioOnlyMark.content.firstElementChild.cloneNode(true);
    const image = document.createElement("img");
    image.alt = hit.frame === null ? "Poster frame of " + hit.item_id : "Frame at " + (hit.timecode || "") + " of " + hit.item_id;
    image.loading = "lazy";
    image.src = "/items/" + encodeURIComponent(hit.item_id) + "/artifacts/" +
      (hit.frame === null ? "poster/0" : "sample/" + hit.frame);
    image.addEventListener("error", () => { image.style.visibility = "hidden"; });
    return image;
  }

  function hitItem(hit) {
    const item = document.createElement("li");
    item.className = "hit";
    const text = document.createElement("div");
    const heading = document.createElement("p");
    heading.className = "hit-title";
    const link = document.createElement("a");
    link.href = hitLink(hit);
    link.textContent = hit.item_id + (hit.timecode ? " · " + hit.timecode : "");
    const field = document.createElement("span");
    field.className = "hit-field";
    field.textContent = fields[hit.field] || hit.field;
    heading.append(link, field);
    const snippet = document.createElement("p");
    snippet.className = "hit-snippet";
    for (const part of hit.snippet) {
      if (part.hit) {
        const mark = document.createElement("mark");
        mark.textContent = part.text;
        snippet.append(mark);
      } else {
        snippet.append(document.createTextNode(part.text));
      }
    }
    text.append(heading, snippet);
    item.append(hitPicture(hit), text);
    return item;
  }

  const body = document.getElementById("library-body");
  const count = document.getElementById("library-count");

  async function search(offset) {
    const params = new URLSearchParams({ q: query, limit: "20", offset: String(offset) });
    const status = new URLSearchParams(window.location.search).get("status");
    if (status) params.set("status", status);
    // The status filter still applies to a search: the title names it, beside the link to search every status.
    const scope = status ? " at " + status : "";
    try {
      const page = await api("GET", "/items?" + params.toString());
      if (offset === 0) list.replaceChildren();
      page.hits.forEach((hit) => list.append(hitItem(hit)));
      title.textContent = (page.total === 0 ? "No matches for “" + query + "”"
        : page.total + (page.total === 1 ? " item matches" : " items match") + " “" + query + "”") + scope;
      nextOffset = page.next_offset;
      more.hidden = nextOffset === null;
    } catch (error) {
      title.textContent = "Search failed: " + error.message;
      list.replaceChildren();
      more.hidden = true;
    }
  }

  /** Show the page the URL asks for: the results of its ``q`` in place of the library, or the library. */
  function show() {
    query = (new URLSearchParams(window.location.search).get("q") || "").trim();
    section.hidden = !query;
    body.hidden = Boolean(query);
    count.hidden = Boolean(query);
    list.replaceChildren();
    more.hidden = true;
    if (query) {
      title.textContent = "Searching for “" + query + "”…";
      everywhere.href = "/ui?q=" + encodeURIComponent(query);
      search(0);
    }
  }

  /** Go to the results of text (the library when empty) as a new history entry, so Back returns. */
  function go(text) {
    const url = new URL(window.location.href);
    const wanted = text.trim();
    if (wanted) url.searchParams.set("q", wanted); else url.searchParams.delete("q");
    url.searchParams.delete("cursor");
    url.searchParams.delete("deleted");
    if (url.href !== window.location.href) window.history.pushState(null, "", url);
    show();
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); go(input.value); });
  more.addEventListener("click", () => { if (nextOffset !== null) search(nextOffset); });
  document.getElementById("search-clear").addEventListener("click", (event) => {
    event.preventDefault();
    input.value = "";
    go("");
    input.focus();
  });
  // The server filled the box from the URL; only Back and Forward change it, so typing before this runs is kept.
  window.addEventListener("popstate", () => { show(); input.value = query; });
  show();
})();
