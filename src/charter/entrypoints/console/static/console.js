// The console works without this file: it only refreshes live views (a running pipeline's DAG, a
// deployment under way and a running step's log) every few seconds.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-refresh]");
  if (live) {
    const seconds = Number(live.getAttribute("data-refresh")) || 3;
    setTimeout(() => {
      // Keep the reader's place: reload only when nobody is typing in a form.
      if (!document.activeElement || !["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName)) {
        window.location.reload();
      }
    }, seconds * 1000);
  }
});
