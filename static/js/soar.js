// The bulk handling bar of Security Event Handling (templates/soar/_bulk_bar.html).
// "Handle selected" counts the events ticked in the table and is disabled while
// none is; the status field is shown only for "Set the status", the playbook
// field only for "Run a playbook". htmx sends the
// ticked boxes with the form (hx-include). The bar comes again with every
// refreshed list, and this script with it: it sets itself up once.
(() => {
  if (window.soarBulkBar) return;
  window.soarBulkBar = true;

  function refresh() {
    const selected = document.querySelectorAll('input[data-testid="select-event"]:checked').length;
    document.querySelectorAll("form[data-bulk-form]").forEach((form) => {
      form.querySelectorAll("[data-bulk-selected-count]").forEach((count) => {
        count.textContent = String(selected);
      });
      form.querySelectorAll("button[data-bulk-selected]").forEach((button) => {
        button.disabled = selected === 0;
      });
      const action = form.querySelector('select[name="bulk-action"]');
      const status = form.querySelector("[data-bulk-status]");
      if (action && status) status.hidden = action.value !== "set_status";
      const playbook = form.querySelector("[data-bulk-playbook]");
      if (action && playbook) playbook.hidden = action.value !== "run_playbook";
    });
  }

  document.addEventListener("change", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", refresh);
  } else {
    refresh();
  }
})();
