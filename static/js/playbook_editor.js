// The step editor of a playbook (templates/soar/playbook_form.html): each step
// shows only the inputs of the kind chosen for it. The server renders the same
// state, and ignores the inputs of the other kinds, so this is only about what
// the user sees while choosing.
(() => {
  function showInputsOf(step) {
    const kind = step.querySelector('select[name$="-kind"]');
    if (!kind) return;
    step.querySelectorAll("[data-step-inputs]").forEach((inputs) => {
      inputs.hidden = inputs.dataset.stepInputs !== kind.value;
    });
  }

  document.addEventListener("change", (event) => {
    if (!event.target.matches('.soar-step select[name$="-kind"]')) return;
    showInputsOf(event.target.closest(".soar-step"));
  });
  // Back/forward restores form values without re-rendering: sync once loaded.
  window.addEventListener("pageshow", () => {
    document.querySelectorAll(".soar-step").forEach(showInputsOf);
  });
})();
