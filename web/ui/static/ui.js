/* autolog review pages: what every page's script shares. Plain JavaScript, no build step. */
"use strict";

window.autolog = (function () {
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const tones = JSON.parse(document.body.dataset.statusTones || "{}");

  /** Send a request to the JSON API with the session cookie and its CSRF token; resolve to the JSON body. */
  async function api(method, url, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": csrfToken };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401) {
      window.location.assign("/ui/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
      throw new Error("signed out");
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.description || data.title || response.statusText);
    return data;
  }

  /** The badge tone of an item document (as GET /items/{id} answers). */
  function itemTone(item) {
    if (item.cancelled) return "cancelled";
    if (item.error || item.dead_lettered) return "failed";
    return tones[item.status] || "pending";
  }

  /** The badge tone after a progress event. */
  function eventTone(event) {
    if (event.state === "failed" || event.state === "dead_lettered") return "failed";
    return tones[event.status] || "working";
  }

  /** Set a badge's text and tone. */
  function setBadge(badge, text, tone) {
    badge.textContent = text;
    badge.className = badge.className.replace(/\btone-\S+/g, "").trim() + " tone-" + tone;
  }

  /** What a progress event says, for people: "analysis running", "frames queued". */
  function activity(event) {
    const states = { queued: "queued", waiting: "waiting for its turn", running: "running", succeeded: "finished",
      failed: "failed, will retry", retrying: "retrying", held: "held: its queue is paused", skipped: "skipped",
      dead_lettered: "failed" };
    return event.stage.replace(/_/g, " ") + " " + (states[event.state] || event.state) +
      (event.attempt > 1 ? " (attempt " + event.attempt + ")" : "");
  }

  /**
   * Follow Server-Sent progress events from url; call onEvent with each decoded event.
   * A hidden tab lets its stream go (each open stream holds an API thread) and opens it again
   * when shown: a stream starts with the latest state, so the page catches up at once.
   */
  function follow(url, onEvent) {
    let source = null;
    function open() {
      if (source) return;
      source = new EventSource(url, { withCredentials: true });
      source.addEventListener("progress", (message) => onEvent(JSON.parse(message.data)));
    }
    function close() {
      if (source) source.close();
      source = null;
    }
    document.addEventListener("visibilitychange", () => (document.hidden ? close() : open()));
    window.addEventListener("pagehide", close);
    if (!document.hidden) open();
  }

  return { api, itemTone, eventTone, setBadge, activity, follow };
})();
