// The Handle panel. Everything works without this file (the server validates
// and re-renders); it only makes the panel pleasant: the validity field follows
// the scenario, the panel takes the focus when it opens, and Close closes it
// where it sits beside a page.
//
// The panel loads this file itself, so it runs again each time htmx swaps the
// panel in: the listeners below are attached once, on the document.
(function () {
  "use strict";

  if (window.secopsDisposal) return;
  window.secopsDisposal = true;

  // A scenario that takes an action validity period shows and enables the
  // field (with the scenario's default when it is empty); others hide it.
  document.addEventListener("change", (event) => {
    const select = event.target;
    if (!select.matches("select[data-validity-field]")) return;
    const input = document.getElementById(select.dataset.validityField);
    const option = select.selectedOptions[0];
    if (!input || !option) return;
    const takes = option.dataset.takesValidity === "yes";
    input.disabled = !takes;
    input.closest(".entity-config").querySelectorAll(".validity-field").forEach((part) => {
      part.hidden = !takes;
    });
    if (takes && !input.value) input.value = option.dataset.defaultValidity || "";
  });

  function closePanel(panel) {
    const holder = panel.closest(".side-panel");
    if (!holder) return false;
    holder.replaceChildren();
    return true;
  }

  // Close and Cancel are links to the event; beside a list they empty the side panel.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-close-panel]");
    if (!link) return;
    const panel = link.closest(".handle-panel");
    if (panel && closePanel(panel)) event.preventDefault();
  });

  // A newly opened panel takes the focus (its heading), so that a keyboard or
  // screen reader user lands in it.
  document.addEventListener("htmx:afterSettle", (event) => {
    const target = event.detail.target;
    if (!target || !target.classList.contains("side-panel")) return;
    const heading = target.querySelector("#handle-panel-title");
    if (heading) heading.focus();
  });
})();
