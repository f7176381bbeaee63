// Incident Source Tracing: draws the event tracing diagram with Cytoscape.js.
//
// The diagram's data is a JSON script element rendered by the server. Every
// label and attribute comes from logs and alerts, which attackers influence:
// Cytoscape draws labels as canvas text, and the side panel is built with
// textContent only, never with HTML strings.
//
// This file is loaded by the tab itself, so it runs again each time htmx swaps
// the tab in; the libraries are loaded once and each diagram is drawn once.
(function () {
  "use strict";

  if (window.secopsTracing) {
    window.secopsTracing.initAll();
    return;
  }

  const ID_PLACEHOLDER = "999999999";
  const NODE_SHAPES = {
    process: "round-rectangle",
    file: "rectangle",
    ip: "ellipse",
    domain: "diamond",
    user: "round-triangle",
    payload: "round-tag",
    url: "hexagon",
    host: "barrel",
    event: "star",
  };
  const LAYOUTS = {
    // Causes on the left, effects to the right: a level of many siblings (the
    // requests of one attacker) becomes a column, where labels do not collide.
    breadthfirst: {
      name: "breadthfirst",
      directed: true,
      spacingFactor: 1.1,
      avoidOverlap: true,
      transform: (node, position) => ({ x: position.y * 1.8, y: position.x }),
    },
    cose: { name: "cose", animate: false, randomize: false, nodeRepulsion: 9000, idealEdgeLength: 90 },
    concentric: {
      name: "concentric",
      minNodeSpacing: 30,
      concentric: (node) => (node.data("seed") ? 10 : 0) + node.degree(),
      levelWidth: () => 2,
    },
    circle: { name: "circle", avoidOverlap: true },
    grid: { name: "grid", avoidOverlap: true },
  };
  const loading = {};

  function loadScript(src) {
    if (!loading[src]) {
      loading[src] = new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = src;
        script.async = false;
        script.addEventListener("load", resolve);
        script.addEventListener("error", () => reject(new Error("Could not load " + src)));
        document.head.appendChild(script);
      });
    }
    return loading[src];
  }

  // The SVG extension registers itself with the global cytoscape, so it loads second.
  async function loadLibraries(container) {
    await loadScript(container.dataset.cytoscapeSrc);
    await loadScript(container.dataset.cytoscapeSvgSrc);
  }

  function cssVariable(element, name, fallback) {
    const value = getComputedStyle(element).getPropertyValue(name).trim();
    return value || fallback;
  }

  function styleFor(container) {
    const colour = (type) => cssVariable(container, "--tracing-" + type, "#6b7686");
    const styles = [
      {
        selector: "node",
        style: {
          label: "data(label)",
          "font-size": 10,
          color: colour("text"),
          "text-valign": "bottom",
          "text-margin-y": 4,
          "text-wrap": "ellipsis",
          "text-max-width": "160px",
          width: 26,
          height: 26,
          "border-width": 0,
        },
      },
      {
        selector: "node[?seed]",
        style: { "border-width": 4, "border-style": "double", "border-color": colour("text") },
      },
      {
        selector: "node[?malicious]",
        style: { "border-width": 4, "border-style": "solid", "border-color": colour("malicious") },
      },
      {
        selector: "node:selected",
        style: { "overlay-opacity": 0.18, "overlay-color": colour("process"), "overlay-padding": 6 },
      },
      {
        selector: "edge",
        style: {
          width: 1.5,
          "curve-style": "bezier",
          "line-color": colour("edge"),
          "target-arrow-color": colour("edge"),
          "target-arrow-shape": "triangle",
          label: "data(relation)",
          "font-size": 8,
          color: "#6b7686",
          "text-rotation": "autorotate",
          "text-background-color": "#fbfcfd",
          "text-background-opacity": 1,
          "text-background-padding": 1,
          // Relation names appear once the diagram is zoomed in enough to read them.
          "min-zoomed-font-size": 7,
        },
      },
    ];
    Object.keys(NODE_SHAPES).forEach((type) => {
      styles.push({
        selector: 'node[type = "' + type + '"]',
        style: { shape: NODE_SHAPES[type], "background-color": colour(type) },
      });
    });
    return styles;
  }

  function elementsOf(data) {
    const nodes = data.nodes.map((node) => ({
      group: "nodes",
      data: {
        id: node.id,
        label: node.label,
        type: node.type,
        malicious: node.malicious,
        seed: node.alert_count > 0,
      },
    }));
    const edges = data.edges.map((edge) => ({
      group: "edges",
      data: {
        id: edge.id,
        source: edge.source,
        target: edge.target,
        relation: edge.count > 1 ? edge.relation + " ×" + edge.count : edge.relation,
      },
    }));
    return nodes.concat(edges);
  }

  function layoutOptions(name, cy) {
    const options = Object.assign({ fit: true, padding: 24 }, LAYOUTS[name] || LAYOUTS.breadthfirst);
    if (options.name === "breadthfirst") {
      const roots = cy.nodes().filter((node) => node.indegree(false) === 0);
      if (roots.length) options.roots = roots;
    }
    return options;
  }

  // --- the side panel -------------------------------------------------------

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function humanise(name) {
    const words = name.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  function describeValue(value) {
    if (Array.isArray(value)) return value.map(describeValue).join(", ");
    if (value !== null && typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function urlFor(template, id) {
    return template.replace(ID_PLACEHOLDER, String(Number(id)));
  }

  function linkList(label, kind, ids, template, total) {
    const dt = element("dt", label);
    const dd = element("dd");
    ids.forEach((id, index) => {
      if (index) dd.appendChild(document.createTextNode(", "));
      const link = element("a", "#" + id);
      link.href = urlFor(template, id);
      link.dataset.kind = kind;
      dd.appendChild(link);
    });
    if (total > ids.length) dd.appendChild(document.createTextNode(" and " + (total - ids.length) + " more"));
    return [dt, dd];
  }

  function showNode(diagram, node) {
    const panel = diagram.panel;
    panel.replaceChildren();
    const typeLabel = diagram.legend[node.type] || node.type;
    panel.appendChild(element("p", typeLabel, "muted"));
    panel.appendChild(element("h4", node.label));
    if (node.malicious) panel.appendChild(element("p", "Named as malicious by an alert.", "malicious-note"));

    const facts = element("dl");
    Object.keys(node.attributes).sort().forEach((name) => {
      facts.appendChild(element("dt", humanise(name)));
      facts.appendChild(element("dd", describeValue(node.attributes[name])));
    });
    if (node.first_seen) {
      facts.appendChild(element("dt", "First seen"));
      facts.appendChild(element("dd", node.first_seen));
    }
    if (node.alerts.length) {
      const alertUrl = diagram.container.dataset.alertUrl;
      linkList("Alerts", "alert", node.alerts, alertUrl, node.alert_count).forEach((n) => facts.appendChild(n));
    }
    if (node.events && node.events.length && node.type !== "event") {
      const eventUrl = diagram.container.dataset.eventUrl;
      linkList("Events", "event", node.events, eventUrl, node.events.length).forEach((n) => facts.appendChild(n));
    }
    facts.appendChild(element("dt", "Log records"));
    facts.appendChild(element("dd", String(node.log_record_count)));
    panel.appendChild(facts);

    if (node.log_record_count && diagram.container.dataset.tracingLogsUrl && window.htmx) {
      const button = element("button", "Show its log records", "link");
      button.type = "button";
      button.dataset.testid = "tracing-node-records";
      button.addEventListener("click", () => {
        const url = diagram.container.dataset.tracingLogsUrl;
        const joiner = url.indexOf("?") === -1 ? "?" : "&";
        window.htmx.ajax("GET", url + joiner + "node=" + encodeURIComponent(node.id), {
          target: "#tracing-logs",
          swap: "outerHTML",
        });
      });
      panel.appendChild(button);
    }
  }

  // Alert links open in the details page's side panel when there is one.
  function openAlertsInPanel(panel) {
    panel.addEventListener("click", (event) => {
      const link = event.target.closest('a[data-kind="alert"]');
      if (!link || !document.getElementById("alert-panel") || !window.htmx) return;
      event.preventDefault();
      window.htmx.ajax("GET", link.href, { target: "#alert-panel" });
    });
  }

  // --- downloads --------------------------------------------------------------

  function download(blob, filename) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function exportDiagram(diagram, format) {
    const filename = (diagram.container.dataset.tracingFilename || "tracing") + "." + format;
    if (format === "png") {
      download(diagram.cy.png({ full: true, scale: 2, bg: "#ffffff", output: "blob" }), filename);
    } else {
      const svg = diagram.cy.svg({ full: true, bg: "#ffffff" });
      download(new Blob([svg], { type: "image/svg+xml;charset=utf-8" }), filename);
    }
  }

  // --- one diagram ------------------------------------------------------------

  async function draw(container) {
    const section = container.closest(".tracing") || document;
    const source = section.querySelector("#" + container.dataset.tracingSource) ||
      document.getElementById(container.dataset.tracingSource);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    container.replaceChildren();
    await loadLibraries(container);

    const cy = window.cytoscape({
      container: container,
      elements: elementsOf(data),
      style: styleFor(container),
      wheelSensitivity: 0.3,
      minZoom: 0.1,
      maxZoom: 4,
    });
    const nodesById = new Map(data.nodes.map((node) => [node.id, node]));
    const legend = {};
    (data.legend || []).forEach((entry) => { legend[entry.type] = entry.label; });
    const panel = section.querySelector("[data-tracing-panel]");
    const diagram = { cy: cy, container: container, panel: panel, legend: legend };
    container.secopsDiagram = diagram;

    const layoutSelect = section.querySelector("[data-tracing-layout]");
    const run = () => cy.layout(layoutOptions(layoutSelect ? layoutSelect.value : "breadthfirst", cy)).run();
    run();
    if (layoutSelect) layoutSelect.addEventListener("change", run);

    cy.on("tap", "node", (event) => {
      const node = nodesById.get(event.target.id());
      if (node && panel) showNode(diagram, node);
    });
    if (panel) openAlertsInPanel(panel);

    const finder = section.querySelector("[data-tracing-find]");
    if (finder) {
      data.nodes
        .slice()
        .sort((a, b) => a.label.localeCompare(b.label))
        .forEach((node) => {
          const option = element("option", (legend[node.type] || node.type) + ": " + node.label);
          option.value = node.id;
          finder.appendChild(option);
        });
      finder.addEventListener("change", () => {
        const node = nodesById.get(finder.value);
        if (!node) return;
        cy.$(":selected").unselect();
        const shown = cy.getElementById(node.id);
        shown.select();
        cy.animate({ center: { eles: shown }, duration: 200 });
        if (panel) showNode(diagram, node);
      });
    }
    const fit = section.querySelector("[data-tracing-fit]");
    if (fit) fit.addEventListener("click", () => cy.fit(undefined, 24));
    section.querySelectorAll("[data-tracing-download]").forEach((button) => {
      button.addEventListener("click", () => exportDiagram(diagram, button.dataset.tracingDownload));
    });
    container.dataset.ready = "true";
  }

  function initAll() {
    document.querySelectorAll("[data-tracing]").forEach((container) => {
      // A diagram restored from htmx's history has its markup but no Cytoscape instance.
      if (container.secopsDiagram || container.dataset.drawing === "true") return;
      container.dataset.drawing = "true";
      container.dataset.ready = "false";
      draw(container)
        .catch((error) => {
          container.replaceChildren(element("p", "The diagram could not be drawn: " + error.message, "notice-inline"));
        })
        .finally(() => { delete container.dataset.drawing; });
    });
  }

  window.secopsTracing = { initAll: initAll };
  document.addEventListener("htmx:historyRestore", initAll);
  initAll();
})();
