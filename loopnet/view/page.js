// The graph page's script (loopnet/view/page.js): loopnet's own, no libraries, no network.
// It reads the trace JSON embedded in the page and fills the side panel:
//   - a node (click, or Tab then Enter): its value and grad, as numbers when small and as
//     a heatmap when large, its op's math and its loop source;
//   - a grad element (click): the explain terms that added up to it, their consumers
//     outlined in the graph;
//   - "Play backward": the nodes light up in reverse topological order, as backward runs.
"use strict";

const trace = JSON.parse(document.getElementById("trace-data").textContent);
const nodes = trace.nodes;
const panel = document.getElementById("panel");
const SMALL = 64; // arrays up to this many elements are shown as numbers

function flatten(array) {
  return Array.isArray(array) ? array.flatMap(flatten) : [array];
}

function toNumber(value) {
  // NaN and +-inf arrive as the strings "nan", "inf" and "-inf" (JSON has no word for them)
  if (typeof value === "number") return value;
  return value === "inf" ? Infinity : value === "-inf" ? -Infinity : NaN;
}

function element(tag, attributes, text) {
  const made = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) made.setAttribute(key, value);
  if (text !== undefined) made.textContent = text;
  return made;
}

function number(value) {
  if (typeof value !== "number") return String(value); // NaN and inf arrive as strings
  return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+(e|$)/, "$1");
}

function indexOf(flat, shape) {
  // the multi-index of a flat position, last axis fastest (C order, as NumPy)
  const index = [];
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index.unshift(flat % shape[axis]);
    flat = Math.floor(flat / shape[axis]);
  }
  return index;
}

function numbers(node, which) {
  // a table of the array's elements: a row per leading index, a column per last index
  const flat = flatten(node[which]);
  const shape = node.shape.length ? node.shape : [1];
  const columns = shape[shape.length - 1];
  const table = element("table", { class: "numbers " + which });
  for (let start = 0; start < flat.length; start += columns) {
    const row = element("tr");
    const lead = indexOf(start, shape).slice(0, -1);
    row.appendChild(element("th", {}, lead.length ? "[" + lead.join(",") + "]" : ""));
    for (let k = start; k < start + columns; k++) {
      const key = node.shape.length ? indexOf(k, node.shape).join(",") : "";
      const cell = element("td", { "data-value": String(flat[k]), "data-index": key });
      if (which === "grad" && node.explain) {
        const button = element("button", { class: "element", "data-index": key }, number(flat[k]));
        button.addEventListener("click", () => explainElement(node, key));
        cell.appendChild(button);
      } else {
        cell.textContent = number(flat[k]);
      }
      row.appendChild(cell);
    }
    table.appendChild(row);
  }
  return table;
}

function heatmap(node, which) {
  // a 2-D slice as coloured cells: blue negative, red positive, white zero, scaled by the
  // slice's largest magnitude. A matrix is its own slice; a higher rank picks one leading
  // index (the select), a vector is one row.
  const flat = flatten(node[which]).map(toNumber);
  const shape = node.shape.length >= 2 ? node.shape.slice(-2) : [1, flat.length];
  const [rows, columns] = shape;
  const leading = node.shape.slice(0, -2);
  const box = element("div", { class: "heatmap-box" });
  const legend = element("p", { class: "legend" });
  const cell = Math.max(2, Math.min(12, Math.floor(360 / columns)));
  const canvas = element("canvas", { width: columns * cell, height: rows * cell, class: "heatmap " + which });
  function draw(slice) {
    const values = flat.slice(slice * rows * columns, (slice + 1) * rows * columns);
    let top = 0; // the largest finite magnitude (a loop: spreading 100k values into Math.max overflows the stack)
    let odd = 0;
    for (const value of values) {
      if (Number.isFinite(value)) top = Math.max(top, Math.abs(value));
      else odd++;
    }
    const context = canvas.getContext("2d");
    values.forEach((value, k) => {
      const v = value / (top || 1); // +-inf stays +-inf: the full colour
      const fade = Math.round(255 * (1 - Math.min(1, Math.abs(v))));
      context.fillStyle = Number.isNaN(v) ? "#9aa0a6" : v >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
      context.fillRect((k % columns) * cell, Math.floor(k / columns) * cell, cell, cell);
    });
    legend.textContent = `${values.length} of ${flat.length} values, |x| up to ${number(top)}: red positive, ` +
      `blue negative` + (odd ? `; ${odd} NaN or infinite (grey for NaN)` : "");
  }
  box.appendChild(legend);
  if (leading.length) {
    const count = leading.reduce((a, b) => a * b, 1);
    const choose = element("select", { class: "slice", "aria-label": "which slice" });
    for (let k = 0; k < count; k++) {
      choose.appendChild(element("option", { value: k }, `[${indexOf(k, leading).join(",")}, :, :]`));
    }
    choose.addEventListener("change", () => draw(Number(choose.value)));
    box.appendChild(choose);
  }
  box.appendChild(canvas);
  draw(0);
  return box;
}

function array(node, which) {
  const section = element("section", { class: which });
  section.appendChild(element("h3", {}, which));
  if (node[which] === null) {
    section.appendChild(element("p", {}, "none: no gradient reaches this node (data, labels)"));
  } else if (flatten(node[which]).length <= SMALL) {
    section.appendChild(numbers(node, which));
    if (which === "grad" && node.explain) section.appendChild(element("p", { class: "hint" },
      "Click a grad element to see the terms backward added into it."));
  } else {
    section.appendChild(heatmap(node, which));
  }
  return section;
}

function select(index) {
  document.querySelectorAll(".node.selected, .node.consumer").forEach(
    (g) => g.classList.remove("selected", "consumer"));
  document.getElementById("node-" + index).classList.add("selected");
}

function openNode(index) {
  const node = nodes[index];
  select(index);
  panel.replaceChildren();
  panel.appendChild(element("h2", {}, node.name));
  const inputs = node.inputs.map((name, k) => (node.roles && node.roles[k] ? node.roles[k] + "=" : "") + name);
  panel.appendChild(element("p", { class: "facts" },
    `${node.op} · shape (${node.shape.join(", ")}) · ${node.dtype}` + (inputs.length ? ` · inputs ${inputs.join(", ")}` : "")));
  panel.appendChild(array(node, "value"));
  panel.appendChild(array(node, "grad"));
  panel.appendChild(element("section", { id: "terms" }));
  if (node.doc) {
    const math = element("details", { class: "doc", open: "" });
    math.appendChild(element("summary", {}, "the op's math"));
    math.appendChild(element("pre", {}, node.doc));
    panel.appendChild(math);
  }
  for (const loop of node.loops || []) {
    const source = element("details", { class: "loop " + loop.phase });
    source.appendChild(element("summary", {}, `${loop.phase} loop: ${loop.name}`));
    source.appendChild(element("pre", {}, loop.source));
    panel.appendChild(source);
  }
}

function explainElement(node, key) {
  const found = node.explain[key];
  const section = document.getElementById("terms");
  section.replaceChildren(element("h3", {}, `${node.name}[${key}]: the terms of its gradient`));
  document.querySelectorAll(".node.consumer").forEach((g) => g.classList.remove("consumer"));
  if (found.seed) {
    section.appendChild(element("p", {}, `the output backward started from: its grad is the seed, ${number(found.grad)}`));
    return;
  }
  const table = element("table", { class: "terms" });
  const head = element("tr");
  for (const title of ["#", "op", "output element", "upstream", "local", "term", "running sum"]) {
    head.appendChild(element("th", {}, title));
  }
  table.appendChild(head);
  found.terms.forEach((term, k) => {
    const row = element("tr", { "data-term": String(term.term) });
    const out = term.consumer + (term.output_index.length ? "[" + term.output_index.join(",") + "]" : "");
    for (const text of [k + 1, `${term.op} '${term.consumer}'`, out, number(term.upstream),
      number(term.local), number(term.term), number(term.running)]) row.appendChild(element("td", {}, String(text)));
    table.appendChild(row);
    const consumer = nodes.findIndex((n) => n.name === term.consumer);
    if (consumer >= 0) document.getElementById("node-" + consumer).classList.add("consumer");
  });
  section.appendChild(table);
  if (!found.terms.length) section.appendChild(element("p", {}, "no term: its gradient is 0"));
  section.appendChild(element("p", { class: "total", "data-total": String(found.total) },
    `total ${number(found.total)} = ${node.name}[${key}] grad ${number(found.grad)}`));
}

let playing = null;

function play() {
  const button = document.getElementById("play");
  document.querySelectorAll(".node.lit").forEach((g) => g.classList.remove("lit"));
  if (playing !== null) {
    clearInterval(playing);
    playing = null;
    button.textContent = "Play backward";
    return;
  }
  let next = nodes.length - 1; // backward runs the loops in reverse topological order
  button.textContent = "Stop";
  playing = setInterval(() => {
    if (next < 0) {
      clearInterval(playing);
      playing = null;
      button.textContent = "Play backward";
      return;
    }
    document.getElementById("node-" + next).classList.add("lit");
    document.getElementById("status").textContent = `backward: ${nodes[next].name}`;
    next--;
  }, 400);
}

document.querySelectorAll(".node").forEach((g) => {
  const index = Number(g.dataset.index);
  g.addEventListener("click", () => openNode(index));
  g.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openNode(index);
    }
  });
});
document.getElementById("play").addEventListener("click", play);
