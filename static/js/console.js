// Scope selectors submit as soon as a new value is picked.
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.requestSubmit();
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
