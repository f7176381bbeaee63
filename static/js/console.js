// Scope selectors submit as soon as a new value is picked.
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.requestSubmit();
});

// Forms with data-confirm (deletions, revocations) ask before they submit.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A file input with data-read-into="ID" puts the chosen file's text into the
// field ID (the Sigma editor's "Upload a .yml file"), then forgets the file.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!input.matches("input[type=file][data-read-into]")) return;
  const file = input.files[0];
  if (!file) return;
  file.text().then((text) => {
    document.getElementById(input.dataset.readInto).value = text;
    input.value = "";
  });
});

// Picking a date means a custom range.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (input.matches('input[type=date][name=start], input[type=date][name=end]')) {
    const preset = input.form && input.form.querySelector("select[name=occurred]");
    if (preset) preset.value = "custom";
  }
}, true);

// After a tab panel is swapped in, mark its tab as the selected one.
document.addEventListener("htmx:afterSettle", (event) => {
  const panel = document.getElementById("tab");
  if (!panel || !panel.dataset.tab) return;
  document.querySelectorAll('.tabs [role="tab"]').forEach((tab) => {
    const selected = tab.dataset.testid === `tab-${panel.dataset.tab}`;
    tab.classList.toggle("active", selected);
    tab.setAttribute("aria-selected", selected ? "true" : "false");
  });
});

// A control with data-url-param="NAME" keeps its value in the page's URL
// (?NAME=value), so that a reload, Back and a shared link show the same state
// (the tracing diagram's layout). The URL is replaced, not pushed: another
// layout is not another page to go Back to. The chosen option is marked in the
// markup too, which is what htmx's history snapshot keeps.
document.addEventListener("change", (event) => {
  const control = event.target.closest("[data-url-param]");
  if (!control) return;
  if (control.tagName === "SELECT") {
    Array.from(control.options).forEach((option) => option.toggleAttribute("selected", option.selected));
  }
  const url = new URL(window.location.href);
  url.searchParams.set(control.dataset.urlParam, control.value);
  const path = url.pathname + url.search;
  window.history.replaceState({ htmx: true }, "", path + url.hash);
  // htmx files its snapshot of this page under the path it last put in the URL.
  try {
    window.sessionStorage.setItem("htmx-current-path-for-history", path);
  } catch (error) {
    // Without session storage htmx keeps no snapshots; Back reloads the page.
  }
});

// Live rows on the Alert page: drop the "no alerts" note once one arrives,
// and rows already shown (a poll looks back a little to catch late commits).
document.addEventListener("htmx:afterSwap", (event) => {
  const body = event.detail.target;
  if (!body || body.id !== "alert-rows") return;
  const seen = new Set();
  // Oldest position first, so a row already shown stays where it is.
  Array.from(body.querySelectorAll("tr[data-alert-id]")).reverse().forEach((row) => {
    if (seen.has(row.dataset.alertId)) {
      row.remove();
    } else {
      seen.add(row.dataset.alertId);
    }
  });
  if (seen.size) body.querySelectorAll("tr.empty-row").forEach((row) => row.remove());
});

// Wide tables scroll sideways inside their panel instead of pushing the page
// past the window's edge (at 1,024 pixels the events table is wider than its
// card). Every table gets the same wrapper, those htmx swaps in included, so no
// template has to remember it. Tables with pop-up tooltips are left alone: a
// scrolling box would clip them.
function wrapWideTables(root) {
  root.querySelectorAll("table.table").forEach((table) => {
    const parent = table.parentElement;
    if (!parent || parent.classList.contains("table-scroll") || table.querySelector(".tooltip-host")) return;
    const wrapper = document.createElement("div");
    wrapper.className = "table-scroll";
    parent.insertBefore(wrapper, table);
    wrapper.appendChild(table);
  });
}
document.addEventListener("DOMContentLoaded", () => wrapWideTables(document));
document.addEventListener("htmx:afterSettle", (event) => wrapWideTables(event.detail.elt.parentElement || document));

// htmx swaps no 4xx/5xx response, which would leave a panel as it was or
// blank. The console's error pages answer htmx with a fragment marked by
// X-Error-Fragment (secops/errors.py): show it in the panel that asked. The
// target keeps its element (and id), so the panel can be used again; inside a
// table the message goes above the table, so that no row is lost.
document.addEventListener("htmx:beforeSwap", (event) => {
  const detail = event.detail;
  if (!detail.xhr || detail.xhr.getResponseHeader("X-Error-Fragment") !== "true") return;
  detail.shouldSwap = true;
  detail.isError = false;
  detail.selectOverride = ".error-page";
  const table = detail.target.closest("table");
  if (table) {
    const previous = table.previousElementSibling;
    if (previous && previous.matches(".error-page")) previous.remove();
    detail.target = table;
    detail.swapOverride = "beforebegin";
  } else {
    detail.swapOverride = "innerHTML";
  }
});
