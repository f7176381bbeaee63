// The policy group editor: condition rows added and removed in place, the
// object list narrowed to the scenario's objects and the condition list to
// what the chosen object supports. The server validates everything again.
(function () {
  "use strict";

  function init() {
    const form = document.getElementById("group-form");
    const data = document.getElementById("whitelist-catalogue");
    if (!form || !data) return;
    const catalogue = JSON.parse(data.textContent);
    const rows = document.getElementById("condition-rows");
    const template = document.getElementById("condition-template");
    const scenario = document.getElementById("id_scenario");
    const other = document.getElementById("id_scenario_other");

    function changed() {
      document.body.dispatchEvent(new CustomEvent("conditions-changed"));
    }

    function scenarioObjects() {
      if (scenario.value === "__other__" || !scenario.value) return catalogue.all_objects;
      return catalogue.scenarios[scenario.value] || catalogue.all_objects;
    }

    function narrowOperators(row) {
      const object = row.querySelector("select[name=condition_object]");
      const operator = row.querySelector("select[name=condition_operator]");
      const kind = catalogue.kinds[object.value] || "text";
      const allowed = catalogue.operators[kind];
      for (const option of operator.options) {
        option.hidden = option.disabled = !allowed.includes(option.value);
      }
      if (operator.selectedOptions[0] && operator.selectedOptions[0].disabled) {
        operator.value = allowed[0];
      }
    }

    function narrowObjects() {
      const allowed = scenarioObjects();
      for (const select of rows.querySelectorAll("select[name=condition_object]")) {
        for (const option of select.options) {
          if (!option.value) continue;
          option.hidden = option.disabled = !allowed.includes(option.value);
        }
        if (select.value && !allowed.includes(select.value)) select.value = "";
        narrowOperators(select.closest("tr"));
      }
    }

    function showOther() {
      other.hidden = scenario.value !== "__other__";
      other.required = !other.hidden;
    }

    function syncAccounts() {
      const chosen = form.querySelector("input[name=applies_to][value=accounts]");
      for (const box of form.querySelectorAll("input[name=accounts]")) {
        box.disabled = !chosen.checked;
      }
    }

    document.getElementById("add-condition").addEventListener("click", function () {
      rows.appendChild(template.content.cloneNode(true));
      narrowObjects();
      rows.lastElementChild.querySelector("select").focus();
    });
    rows.addEventListener("click", function (event) {
      const button = event.target.closest("[data-remove-condition]");
      if (!button) return;
      button.closest("tr").remove();
      changed();
    });
    rows.addEventListener("change", function (event) {
      if (event.target.name === "condition_object") narrowOperators(event.target.closest("tr"));
    });
    scenario.addEventListener("change", function () {
      showOther();
      narrowObjects();
    });
    for (const radio of form.querySelectorAll("input[name=applies_to]")) {
      radio.addEventListener("change", syncAccounts);
    }
    // Condition values grow with their content (lists take one entry per line).
    function fit(textarea) {
      textarea.style.height = "auto";
      textarea.style.height = Math.min(textarea.scrollHeight + 2, 240) + "px";
    }
    rows.addEventListener("input", function (event) {
      if (event.target.tagName === "TEXTAREA") fit(event.target);
    });
    for (const textarea of rows.querySelectorAll("textarea")) fit(textarea);

    showOther();
    narrowObjects();
    syncAccounts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
