/* The item page: live status, and the actions, each a call to the JSON API. */
"use strict";

(function () {
  const { api, itemTone, eventTone, setBadge, activity, follow } = window.autolog;
  const root = document.getElementById("item");
  const itemId = root.dataset.itemId;
  const itemUrl = "/items/" + encodeURIComponent(itemId);
  const badge = document.getElementById("item-status");
  const message = document.getElementById("action-message");
  const renderedStatus = root.dataset.status;

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("is-error", Boolean(isError));
  }

  /**
   * Show an item document: status, error, prompt, and which actions apply now.
   * ``queuedNow`` is true right after an action queued the item: its recorded error is then the
   * last attempt's, kept (dimmed) until the step ends, and Retry waits for that end too.
   */
  function showItem(item, queuedNow) {
    setBadge(badge, item.status, queuedNow && !item.cancelled ? "working" : itemTone(item));
    const error = document.getElementById("item-error");
    const stale = Boolean(queuedNow && item.error);
    error.textContent = item.error ? (stale ? "Queued again; the last attempt failed with " : "") +
      item.error.type + " in " + item.error.step + ": " + item.error.message : "";
    error.hidden = !item.error;
    error.classList.toggle("is-stale", stale);
    document.getElementById("item-prompt").textContent = item.prompt || "";
    document.getElementById("prompt-panel").hidden = !item.prompt;
    const logged = item.status === "7 - Avid Description";
    document.getElementById("prompt-form").hidden = item.status !== "Awaiting User Input" || item.cancelled || queuedNow;
    document.getElementById("retry-button").hidden = queuedNow || item.cancelled || !(item.error || item.dead_lettered);
    document.getElementById("cancel-button").hidden = item.cancelled || (logged && !queuedNow);
    document.getElementById("uncancel-button").hidden = !item.cancelled;
    document.getElementById("rerun-form").hidden = item.cancelled || rerunSelect.options.length === 0;
    document.getElementById("exports").hidden = !logged || queuedNow;
    // The contact sheet, frames, facts and timeline are as rendered: say when a reload shows more.
    if (item.status !== renderedStatus) document.getElementById("reload-note").hidden = false;
  }

  const rerunSelect = document.getElementById("rerun-step");
  /** True from an action that queued the item until a step ends (a delivery held for a paused queue is no end). */
  let queuedByAction = false;

  async function act(button, method, url, body, done) {
    button.disabled = true;
    try {
      const answer = await api(method, url, body);
      // A job id means a message carries the item now; none (with a reason) means nothing runs from its status.
      queuedByAction = Boolean(answer.job_id);
      showItem(answer.item, queuedByAction);
      if (answer.reason) say(done.split(":")[0].replace(/\.$/, "") + ". Nothing was queued: " + answer.reason + ".");
      else say(done + (answer.queued === false ? " Redis is down: it will be queued when it is back." : ""));
    } catch (error) {
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  }

  document.getElementById("prompt-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = document.getElementById("prompt-text").value.trim();
    if (!text) return;
    act(event.submitter || event.target.querySelector("button"), "POST", itemUrl + "/prompt", { prompt: text },
      "Prompt sent: the analysis is queued.");
  });
  document.getElementById("resume-button").addEventListener("click", (event) => {
    act(event.currentTarget, "POST", itemUrl + "/resume", undefined, "Continued without a prompt: the analysis is queued.");
  });
  document.getElementById("retry-button").addEventListener("click", (event) => {
    act(event.currentTarget, "POST", itemUrl + "/retry", undefined, "Queued again.");
  });
  document.getElementById("cancel-button").addEventListener("click", (event) => {
    if (!window.confirm("Cancel " + itemId + "? Queued and later steps will skip it.")) return;
    act(event.currentTarget, "POST", itemUrl + "/cancel", undefined, "Cancelled.");
  });
  document.getElementById("uncancel-button").addEventListener("click", (event) => {
    act(event.currentTarget, "POST", itemUrl + "/uncancel", undefined, "Cancel undone: queued again from where it stopped.");
  });
  document.getElementById("rerun-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const step = rerunSelect.value;
    const label = rerunSelect.options[rerunSelect.selectedIndex].text;
    act(document.getElementById("rerun-button"), "POST", itemUrl + "/rerun?from=" + encodeURIComponent(step), undefined,
      "Queued again from step " + label + ".");
  });
  document.getElementById("delete-button").addEventListener("click", async (event) => {
    if (!window.confirm("Delete " + itemId + "? Its log, timeline and artifact files are removed; this cannot be undone.")) return;
    const button = event.currentTarget;
    button.disabled = true;
    try {
      await api("DELETE", itemUrl);
      window.location.assign("/ui?deleted=" + encodeURIComponent(itemId));
    } catch (error) {
      say(error.message, true);
      button.disabled = false;
    }
  });

  follow(itemUrl + "/progress", (event) => {
    document.getElementById("item-activity").textContent = event.final ? "" : activity(event);
    if (event.status) setBadge(badge, event.status, eventTone(event));
    if (["succeeded", "failed", "dead_lettered", "skipped", "held"].includes(event.state)) {
      if (event.state !== "held") queuedByAction = false;
      api("GET", itemUrl).then((item) => showItem(item, queuedByAction), () => {});
    }
  });

  /** A link to a frame (#frame-3, from a search hit) scrolls to that frame record and marks it. */
  function showTarget() {
    const frame = /^#frame-\d+$/.test(window.location.hash) ? document.querySelector(window.location.hash) : null;
    if (!frame) return;
    document.querySelectorAll(".frame.is-target").forEach((row) => row.classList.remove("is-target"));
    frame.classList.add("is-target");
    frame.scrollIntoView({ block: "center" });
    frame.focus({ preventScroll: true });
  }
  window.addEventListener("hashchange", showTarget);
  showTarget();
})();
