// Incident Source Tracing: draws the event tracing diagram with Cytoscape.js.
//
// The diagram's data is a JSON script element rendered by the server. Every
// label and attribute comes from logs and alerts, which attackers influence:
// Cytoscape draws labels as canvas text, the side panel is built with
// textContent only, never with HTML strings, and the SVG download puts labels
// in text nodes that XMLSerializer escapes.
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
      {
        selector: "edge[!fromLogs]",
        style: { "line-style": "dashed", "line-dash-pattern": [6, 3] },
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
        seed: node.alert_count > 0 || (node.sources || []).indexOf("alerts") !== -1,
      },
    }));
    const edges = data.edges.map((edge) => ({
      group: "edges",
      data: {
        id: edge.id,
        source: edge.source,
        target: edge.target,
        relation: edge.count > 1 ? edge.relation + " ×" + edge.count : edge.relation,
        // A relation the logs do not show is drawn dashed (see the legend).
        fromLogs: (edge.sources || ["logs"]).indexOf("logs") !== -1,
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

  const SOURCE_NAMES = { alerts: "the event's alerts", logs: "the host logs" };

  function describeSources(sources) {
    const names = (sources || []).map((source) => SOURCE_NAMES[source] || source);
    return names.length ? names.join(" and ") : "—";
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
    facts.appendChild(element("dt", "Source"));
    facts.appendChild(element("dd", describeSources(node.sources), "sources"));
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

  // --- SVG export -------------------------------------------------------------
  //
  // Draws again, as vector shapes, what Cytoscape painted: the same positions,
  // sizes, colours and labels, in model coordinates over the box that
  // cy.png({full: true}) covers. It reads the style properties the diagram uses
  // (styleFor) and repeats Cytoscape's own geometry (unit polygons, corner radii,
  // arrow size, label placement), so that both downloads look alike. The labels
  // enter the document only as text nodes, which XMLSerializer escapes.

  const SVG_NS = "http://www.w3.org/2000/svg";
  // Characters that XML 1.0 cannot carry even escaped (most control characters,
  // and halves of surrogate pairs): one in a log line would make the whole file
  // unreadable.
  const NON_XML_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;
  const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
  // Share of the font size below the baseline, where the browser cannot measure it.
  const DESCENT_SHARE = 0.21;
  const ELLIPSIS = "\u2026";

  function regularPolygon(sides, rotation) {
    const increment = (2 * Math.PI) / sides;
    const start = (sides % 2 === 0 ? Math.PI / 2 + increment / 2 : Math.PI / 2) + rotation;
    return Array.from({ length: sides }, (_, index) => {
      const angle = start + index * increment;
      return [Math.cos(angle), Math.sin(-angle)];
    });
  }

  // Stretches a polygon over -1..1 both ways, as Cytoscape does with its shapes.
  function fitToSquare(points) {
    const xs = points.map((point) => point[0]);
    const ys = points.map((point) => point[1]);
    const scaleX = 2 / (Math.max(...xs) - Math.min(...xs));
    const scaleY = 2 / (Math.max(...ys) - Math.min(...ys));
    const stretched = points.map(([x, y]) => [x * scaleX, y * scaleY]);
    const top = Math.min(...stretched.map((point) => point[1]));
    return top < -1 ? stretched.map(([x, y]) => [x, y - 1 - top]) : stretched;
  }

  function starPoints() {
    const outer = regularPolygon(5, 0);
    const innerRadius = 0.5 * (3 - Math.sqrt(5)) * 1.57;
    const inner = regularPolygon(5, Math.PI / 5).map(([x, y]) => [x * innerRadius, y * innerRadius]);
    return fitToSquare(outer.flatMap((point, index) => [point, inner[index]]));
  }

  // Node shapes drawn as polygons over the unit square; a "round-" prefix rounds their corners.
  const UNIT_POLYGONS = {
    rectangle: fitToSquare(regularPolygon(4, 0)),
    square: fitToSquare(regularPolygon(4, 0)),
    triangle: fitToSquare(regularPolygon(3, 0)),
    diamond: [[0, 1], [1, 0], [0, -1], [-1, 0]],
    pentagon: fitToSquare(regularPolygon(5, 0)),
    hexagon: fitToSquare(regularPolygon(6, 0)),
    heptagon: fitToSquare(regularPolygon(7, 0)),
    octagon: fitToSquare(regularPolygon(8, 0)),
    star: starPoints(),
    tag: [[-1, -1], [0.25, -1], [1, 0], [0.25, 1], [-1, 1]],
  };

  function number(value) {
    return String(Math.round(value * 100) / 100);
  }

  function xy(point) {
    return number(point.x) + "," + number(point.y);
  }

  function xmlSafe(text) {
    return String(text === undefined || text === null ? "" : text)
      .replace(NON_XML_CHARACTERS, "\uFFFD")
      .replace(LONE_SURROGATES, "\uFFFD");
  }

  function svgElement(doc, tag, attributes) {
    const node = doc.createElementNS(SVG_NS, tag);
    Object.entries(attributes || {}).forEach(([name, value]) => {
      node.setAttribute(name, typeof value === "number" ? number(value) : String(value));
    });
    return node;
  }

  function polygonPath(points) {
    return "M" + points.map(xy).join("L") + "Z";
  }

  // Each corner becomes an arc of the given radius, shrunk where the sides are too short for it.
  function roundedPolygonPath(points, radius) {
    const corners = points.map((corner, index) => {
      const previous = points[(index + points.length - 1) % points.length];
      const next = points[(index + 1) % points.length];
      const back = { x: previous.x - corner.x, y: previous.y - corner.y };
      const ahead = { x: next.x - corner.x, y: next.y - corner.y };
      const backLength = Math.hypot(back.x, back.y);
      const aheadLength = Math.hypot(ahead.x, ahead.y);
      const cosine = (back.x * ahead.x + back.y * ahead.y) / (backLength * aheadLength);
      const halfAngle = Math.acos(Math.max(-1, Math.min(1, cosine))) / 2;
      if (!radius || Math.abs(halfAngle - Math.PI / 2) < 1e-6) return "L" + xy(corner);
      const limit = Math.min(backLength, aheadLength) / 2;
      const cut = Math.min(radius / Math.tan(halfAngle), limit);
      const arcRadius = cut * Math.tan(halfAngle);
      const start = { x: corner.x + (back.x / backLength) * cut, y: corner.y + (back.y / backLength) * cut };
      const end = { x: corner.x + (ahead.x / aheadLength) * cut, y: corner.y + (ahead.y / aheadLength) * cut };
      const clockwise = -back.x * ahead.y + back.y * ahead.x > 0;
      return "L" + xy(start) + "A" + number(arcRadius) + " " + number(arcRadius) + " 0 0 " +
        (clockwise ? "1 " : "0 ") + xy(end);
    });
    return "M" + corners.join("").slice(1) + "Z";
  }

  function barrelPath(centre, width, height) {
    const left = centre.x - width / 2;
    const right = centre.x + width / 2;
    const top = centre.y - height / 2;
    const bottom = centre.y + height / 2;
    const curveHeight = Math.min(15, 0.05 * height);
    const curveWidth = Math.min(100, 0.25 * width);
    const control = 0.05 * curveWidth;
    const p = (x, y) => xy({ x: x, y: y });
    return "M" + p(left, top + curveHeight) + "L" + p(left, bottom - curveHeight) +
      "Q" + p(left + control, bottom) + " " + p(left + curveWidth, bottom) +
      "L" + p(right - curveWidth, bottom) +
      "Q" + p(right - control, bottom) + " " + p(right, bottom - curveHeight) +
      "L" + p(right, top + curveHeight) +
      "Q" + p(right - control, top) + " " + p(right - curveWidth, top) +
      "L" + p(left + curveWidth, top) +
      "Q" + p(left + control, top) + " " + p(left, top + curveHeight) + "Z";
  }

  function nodeBody(doc, node, centre, width, height) {
    const shape = node.style("shape");
    const cornerRadius = (automatic) =>
      node.style("corner-radius") === "auto" ? automatic : node.numericStyle("corner-radius");
    if (shape === "round-rectangle" || shape === "roundrectangle") {
      const radius = Math.min(cornerRadius(Math.min(width / 4, height / 4, 8)), width / 2, height / 2);
      return svgElement(doc, "rect", {
        x: centre.x - width / 2, y: centre.y - height / 2, width: width, height: height, rx: radius, ry: radius,
      });
    }
    if (shape === "barrel") return svgElement(doc, "path", { d: barrelPath(centre, width, height) });
    const rounded = shape.startsWith("round-");
    const unit = UNIT_POLYGONS[rounded ? shape.slice("round-".length) : shape];
    if (!unit) {
      return svgElement(doc, "ellipse", { cx: centre.x, cy: centre.y, rx: width / 2, ry: height / 2 });
    }
    const points = unit.map(([x, y]) => ({ x: centre.x + (x * width) / 2, y: centre.y + (y * height) / 2 }));
    const d = rounded
      ? roundedPolygonPath(points, cornerRadius(Math.min(width / 10, height / 10, 8)))
      : polygonPath(points);
    return svgElement(doc, "path", { d: d });
  }

  // Sets the measuring context to the element's font and returns the text attributes for it.
  function useFont(measure, ele) {
    const size = ele.numericStyle("font-size");
    const family = ele.style("font-family");
    const weight = ele.style("font-weight");
    const fontStyle = ele.style("font-style");
    measure.font = fontStyle + " " + weight + " " + size + "px " + family;
    const descent = measure.measureText("Hg").fontBoundingBoxDescent;
    return {
      size: size,
      // Cytoscape sets text on the bottom of its line box; SVG on the baseline above it.
      descent: Number.isFinite(descent) ? descent : size * DESCENT_SHARE,
      attributes: {
        "font-family": family, "font-size": size, "font-weight": weight, "font-style": fontStyle,
        fill: ele.style("color"), "fill-opacity": ele.numericStyle("text-opacity"),
      },
    };
  }

  function textWidth(measure, text) {
    return Math.ceil(measure.measureText(text).width);
  }

  // The longest start of the label that fits with an ellipsis, as Cytoscape shows it.
  function ellipsised(measure, text, maxWidth) {
    if (textWidth(measure, text) < maxWidth) return text;
    const characters = Array.from(text);
    let fits = 0;
    let tooLong = characters.length;
    while (tooLong - fits > 1) {
      const middle = Math.floor((fits + tooLong) / 2);
      if (textWidth(measure, characters.slice(0, middle).join("") + ELLIPSIS) <= maxWidth) fits = middle;
      else tooLong = middle;
    }
    return characters.slice(0, fits).join("") + ELLIPSIS;
  }

  function nodeLabel(doc, node, measure, centre, width, height) {
    const label = xmlSafe(node.style("label"));
    if (!label) return null;
    const font = useFont(measure, node);
    const shown = node.style("text-wrap") === "ellipsis"
      ? ellipsised(measure, label, node.numericStyle("text-max-width"))
      : label;
    const halign = node.style("text-halign");
    const valign = node.style("text-valign");
    let x = centre.x;
    let anchor = "middle";
    if (halign === "left") [x, anchor] = [centre.x - width / 2, "end"];
    if (halign === "right") [x, anchor] = [centre.x + width / 2, "start"];
    let bottom = centre.y + font.size / 2;
    if (valign === "top") bottom = centre.y - height / 2;
    if (valign === "bottom") bottom = centre.y + height / 2 + font.size;
    const text = svgElement(doc, "text", Object.assign({
      x: x + node.numericStyle("text-margin-x"),
      y: bottom + node.numericStyle("text-margin-y") - font.descent,
      "text-anchor": anchor,
    }, font.attributes));
    text.textContent = shown;
    return text;
  }

  function nodeGroup(doc, node, measure, background) {
    const group = svgElement(doc, "g", { class: "node" });
    if (node.effectiveOpacity() < 1) group.setAttribute("opacity", number(node.effectiveOpacity()));
    // The whole label, where the drawing shows it shortened.
    const title = svgElement(doc, "title");
    title.textContent = xmlSafe(node.style("label"));
    group.appendChild(title);

    const centre = node.position();
    const padding = node.numericStyle("padding");
    const width = node.width() + 2 * padding;
    const height = node.height() + 2 * padding;
    const body = nodeBody(doc, node, centre, width, height);
    body.setAttribute("fill", node.style("background-color"));
    body.setAttribute("fill-opacity", number(node.numericStyle("background-opacity")));
    const borderWidth = node.numericStyle("border-width");
    if (borderWidth > 0) {
      body.setAttribute("stroke", node.style("border-color"));
      body.setAttribute("stroke-width", number(borderWidth));
      body.setAttribute("stroke-opacity", number(node.numericStyle("border-opacity")));
    }
    group.appendChild(body);
    if (borderWidth > 0 && node.style("border-style") === "double") {
      // Cytoscape cuts the middle third out of a double border, down to the background.
      const gap = svgElement(doc, body.localName);
      Array.from(body.attributes).forEach((attribute) => gap.setAttribute(attribute.name, attribute.value));
      gap.setAttribute("fill", "none");
      gap.setAttribute("stroke", background);
      gap.setAttribute("stroke-width", number(borderWidth / 3));
      gap.setAttribute("stroke-opacity", "1");
      gap.removeAttribute("fill-opacity");
      group.appendChild(gap);
    }
    const label = nodeLabel(doc, node, measure, centre, width, height);
    if (label) group.appendChild(label);
    return group;
  }

  function arrowMarker(doc, defs, markers, colour, length, gap) {
    const key = [colour, length, gap].join(" ");
    if (!markers.has(key)) {
      const id = "arrow-" + markers.size;
      const marker = svgElement(doc, "marker", {
        id: id,
        viewBox: "0 0 " + number(length) + " " + number(length),
        markerWidth: length,
        markerHeight: length,
        markerUnits: "userSpaceOnUse",
        // The line ends under the arrow, `gap` short of its tip.
        refX: length - gap,
        refY: length / 2,
        orient: "auto",
      });
      marker.appendChild(svgElement(doc, "path", {
        d: "M0,0L" + number(length) + "," + number(length / 2) + "L0," + number(length) + "Z",
        fill: colour,
      }));
      defs.appendChild(marker);
      markers.set(key, id);
    }
    return markers.get(key);
  }

  // The angle Cytoscape gives an edge label: along the line, never upside down.
  function labelAngle(dx, dy) {
    if (!dx && !dy) return 0;
    const angle = Math.atan(dy / dx);
    return dx === 0 && angle < 0 ? -angle : angle;
  }

  // The direction of the edge at its midpoint. A curved edge is a chain of
  // quadratic curves through `anchors` (start, control, join, control, ..., end):
  // its midpoint is the middle of the middle curve or the join of the two middle
  // ones, and either way the anchors on both sides give the direction there.
  function middleDirection(anchors) {
    const curves = (anchors.length - 1) / 2;
    const from = curves >= 1 ? anchors[curves - 1] : anchors[0];
    const to = curves >= 1 ? anchors[curves + 1] : anchors[anchors.length - 1];
    return { x: to.x - from.x, y: to.y - from.y };
  }

  function edgeLabel(doc, edge, measure, anchors) {
    const label = xmlSafe(edge.style("label"));
    if (!label) return null;
    const font = useFont(measure, edge);
    const direction = middleDirection(anchors);
    const angle = edge.style("text-rotation") === "autorotate" ? labelAngle(direction.x, direction.y) : 0;
    const group = svgElement(doc, "g", {
      transform: "translate(" + number(edge.midpoint().x) + " " + number(edge.midpoint().y) + ") rotate(" +
        number((angle * 180) / Math.PI) + ")",
    });
    const backgroundOpacity = edge.numericStyle("text-background-opacity");
    if (backgroundOpacity > 0) {
      const padding = edge.numericStyle("text-background-padding");
      const width = textWidth(measure, label);
      group.appendChild(svgElement(doc, "rect", {
        x: -width / 2 - padding, y: -font.size / 2 - padding,
        width: width + 2 * padding, height: font.size + 2 * padding,
        fill: edge.style("text-background-color"), "fill-opacity": backgroundOpacity,
      }));
    }
    const text = svgElement(doc, "text", Object.assign(
      { x: 0, y: font.size / 2 - font.descent, "text-anchor": "middle" }, font.attributes));
    text.textContent = label;
    group.appendChild(text);
    return group;
  }

  function edgeGroup(doc, edge, measure, defs, markers) {
    const start = edge.sourceEndpoint();
    const tip = edge.targetEndpoint();
    if (![start.x, start.y, tip.x, tip.y].every(Number.isFinite)) return null;
    const group = svgElement(doc, "g", { class: "edge" });
    if (edge.effectiveOpacity() < 1) group.setAttribute("opacity", number(edge.effectiveOpacity()));

    const anchors = [start];
    (edge.controlPoints() || []).forEach((control, index, controls) => {
      const previous = controls[index - 1];
      if (previous) anchors.push({ x: (previous.x + control.x) / 2, y: (previous.y + control.y) / 2 });
      anchors.push(control);
    });
    const width = edge.numericStyle("width");
    const arrowScale = edge.numericStyle("arrow-scale");
    const arrow = edge.style("target-arrow-shape") !== "none";
    const gap = arrow ? 2 * width * arrowScale : 0;
    const before = anchors[anchors.length - 1];
    const reach = Math.hypot(tip.x - before.x, tip.y - before.y);
    const shortening = reach > gap ? gap / reach : 0;
    anchors.push({ x: tip.x - (tip.x - before.x) * shortening, y: tip.y - (tip.y - before.y) * shortening });

    let d = "M" + xy(anchors[0]);
    if (anchors.length === 2) d += "L" + xy(anchors[1]);
    for (let index = 1; index + 1 < anchors.length; index += 2) {
      d += "Q" + xy(anchors[index]) + " " + xy(anchors[index + 1]);
    }
    const line = svgElement(doc, "path", {
      d: d, fill: "none", stroke: edge.style("line-color"), "stroke-width": width,
      "stroke-opacity": edge.numericStyle("line-opacity"),
    });
    if (edge.style("line-style") === "dashed") {
      const pattern = edge.pstyle("line-dash-pattern");
      const dashes = (pattern && (pattern.pfValue || pattern.value)) || [6, 3];
      line.setAttribute("stroke-dasharray", dashes.map(number).join(" "));
    }
    if (arrow) {
      // Cytoscape's arrow size for this line width; a triangle is 0.3 of it long and wide.
      const length = 0.3 * Math.max(Math.pow(width * 13.37, 0.9), 29) * arrowScale;
      const colour = edge.style("target-arrow-color");
      line.setAttribute("marker-end", "url(#" + arrowMarker(doc, defs, markers, colour, length, gap) + ")");
    }
    group.appendChild(line);
    const label = edgeLabel(doc, edge, measure, anchors);
    if (label) group.appendChild(label);
    return group;
  }

  // The diagram as a standalone SVG document, edges beneath nodes as Cytoscape draws them.
  function svgOf(cy, background) {
    const doc = document.implementation.createDocument(SVG_NS, "svg", null);
    const svg = doc.documentElement;
    const box = cy.elements().boundingBox();
    const drawn = Number.isFinite(box.w) && Number.isFinite(box.h);
    const left = drawn ? box.x1 : 0;
    const top = drawn ? box.y1 : 0;
    const width = drawn ? Math.ceil(box.w) : 0;
    const height = drawn ? Math.ceil(box.h) : 0;
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("viewBox", [left, top, width, height].map(number).join(" "));
    const defs = svgElement(doc, "defs");
    svg.appendChild(defs);
    svg.appendChild(svgElement(doc, "rect", { x: left, y: top, width: width, height: height, fill: background }));

    const measure = document.createElement("canvas").getContext("2d");
    const markers = new Map();
    const edges = svgElement(doc, "g", { class: "edges" });
    cy.edges().filter((edge) => edge.visible()).forEach((edge) => {
      const group = edgeGroup(doc, edge, measure, defs, markers);
      if (group) edges.appendChild(group);
    });
    const nodes = svgElement(doc, "g", { class: "nodes" });
    cy.nodes().filter((node) => node.visible()).forEach((node) => {
      nodes.appendChild(nodeGroup(doc, node, measure, background));
    });
    svg.appendChild(edges);
    svg.appendChild(nodes);
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(doc);
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
      download(new Blob([svgOf(diagram.cy, "#ffffff")], { type: "image/svg+xml;charset=utf-8" }), filename);
    }
  }

  // --- one diagram ------------------------------------------------------------

  // Cytoscape injects an inline <style> (its container's position: relative)
  // unless an element with this id exists. The Content-Security-Policy refuses
  // inline styles, so tracing.css carries the rule and an empty marker stands
  // in for the stylesheet.
  const CYTOSCAPE_STYLESHEET_ID = "__________cytoscape_stylesheet";

  function standInForCytoscapeStylesheet() {
    if (document.getElementById(CYTOSCAPE_STYLESHEET_ID)) return;
    const marker = document.createElement("meta");
    marker.id = CYTOSCAPE_STYLESHEET_ID;
    document.head.append(marker);
  }

  // A tab swapped in by htmx brings its <link> with it, and the browser does
  // not hold the tab's scripts until that stylesheet has loaded. Cytoscape
  // measures its container when it starts, so it waits for the sizes and the
  // position that tracing.css gives the canvas.
  function stylesheetLoaded(section) {
    const link = section.querySelector("link[data-tracing-stylesheet]") ||
      document.querySelector("link[data-tracing-stylesheet]");
    if (!link || link.sheet) return Promise.resolve();
    return new Promise((resolve) => {
      link.addEventListener("load", resolve, { once: true });
      link.addEventListener("error", resolve, { once: true });
    });
  }

  async function draw(container) {
    const section = container.closest(".tracing") || document;
    const source = section.querySelector("#" + container.dataset.tracingSource) ||
      document.getElementById(container.dataset.tracingSource);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    container.replaceChildren();
    await Promise.all([loadScript(container.dataset.cytoscapeSrc), stylesheetLoaded(section)]);
    standInForCytoscapeStylesheet();

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
