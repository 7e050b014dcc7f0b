/* The item page: live status, and the actions, each a call to the JSON API. */
"use strict";

(function () {
  const { api, itemTone, eventTone, setBadge, activity, follow } = window.autolog;
  const root = document.getElementById("item");
  const itemId = root.dataset.itemId;
  const itemUrl = "/items/" + encodeURIComponent(itemId);
  const badge = document.getElementById("item-status");
  const message = document.getElementById("action-message");
  const frameCount = document.querySelectorAll(".frame").length;

  function say(text, isError) {
    message.textContent = text;
    message.classList.toggle("is-error", Boolean(isError));
  }

  /** Show an item document: status, error, and which actions apply now. */
  function showItem(item) {
    setBadge(badge, item.status, itemTone(item));
    const error = document.getElementById("item-error");
    error.textContent = item.error ? item.error.type + " in " + item.error.step + ": " + item.error.message : "";
    error.hidden = !item.error;
    const logged = item.status === "7 - Avid Description";
    document.getElementById("prompt-form").hidden = item.status !== "Awaiting User Input" || item.cancelled;
    document.getElementById("retry-button").hidden = !(item.error || item.dead_lettered);
    document.getElementById("cancel-button").hidden = item.cancelled || logged;
    document.getElementById("exports").hidden = !logged;
    if (logged && frameCount === 0) document.getElementById("reload-note").hidden = false;
  }

  async function act(button, method, url, body, done) {
    button.disabled = true;
    try {
      const answer = await api(method, url, body);
      showItem(answer.item);
      say(done + (answer.queued === false ? " Redis is down: it will be queued when it is back." : ""));
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

  follow(itemUrl + "/progress", (event) => {
    document.getElementById("item-activity").textContent = event.final ? "" : activity(event);
    if (event.status) setBadge(badge, event.status, eventTone(event));
    if (["succeeded", "failed", "dead_lettered", "skipped"].includes(event.state)) {
      api("GET", itemUrl).then(showItem, () => {});
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
