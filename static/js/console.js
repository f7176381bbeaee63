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
