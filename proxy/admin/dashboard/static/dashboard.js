// hearthgate dashboard: the little it needs beyond HTML. Everything works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Ask before a form with data-confirm is sent (switching the emergency override on ...).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // A button pressed once: no double submissions on a slow phone.
  for (const form of document.querySelectorAll('form[method="post"]')) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      const button = form.querySelector("button[type=submit]");
      if (button) setTimeout(() => { button.disabled = true; }, 0);
    });
  }
  // Exact times as tooltips.
  for (const t of document.querySelectorAll("time[datetime]")) {
    if (!t.title) t.title = new Date(t.getAttribute("datetime")).toString();
  }
});
