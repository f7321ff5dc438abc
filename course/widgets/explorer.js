// Front end of course.widgets.ConvExplorer and PoolExplorer (an anywidget ES module).
//
// The kernel owns the numbers: every change of a control sets a trait, Python rebuilds the real
// torch layer and sends back `state` (see course/widgets/layers.py). This module only draws
// that state and, for the output cell under the pointer, the input cells its window reads:
// output (i, j) reads padded row i*stride_h + m*dilation_h, column j*stride_w + n*dilation_w.
// No network, no libraries: plain DOM.

const MODES = ["zeros", "reflect", "replicate", "circular"];
const MODE_TEXT = {
  zeros: "zeros: the padding holds 0 (F.pad mode='constant')",
  reflect: "reflect: mirror at the edge, the edge itself not repeated",
  replicate: "replicate: the edge value repeated outward",
  circular: "circular: wrap around; the opposite edge comes in",
};
const CONV_SETTINGS = [
  "height", "width", "kernel_size", "stride", "padding", "dilation", "padding_mode", "values",
];
const POOL_SETTINGS = [
  "op", "height", "width", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
  "count_include_pad", "seed", "negative",
];

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (value === -Infinity || value === "-Infinity") return "−∞";
  if (Number.isInteger(value)) return String(value);
  return String(Math.round(value * 100) / 100);
}

function shapeText(shape) {
  return "(" + shape.join(", ") + ")";
}

// ------------------------------------------------------------------------------ controls

function numberField(label, name, min, max) {
  const input = h("input", {
    type: "number", min: String(min), max: String(max), step: "1", "data-control": name,
  });
  return { input, node: h("label", { class: "cx-field" }, h("span", { text: label }), input) };
}

function selectField(label, name, options) {
  const select = h("select", { "data-control": name });
  for (const [value, text] of options) select.append(h("option", { value, text }));
  return { input: select, node: h("label", { class: "cx-field" }, h("span", { text: label }), select) };
}

function checkField(label, name) {
  const input = h("input", { type: "checkbox", "data-control": name });
  return { input, node: h("label", { class: "cx-field cx-check" }, input, h("span", { text: label })) };
}

// A pair setting ([h, w]) edited by two number inputs.
function pairField(label, name, min, max) {
  const hField = numberField("h", name + "_h", min, max);
  const wField = numberField("w", name + "_w", min, max);
  const node = h("div", { class: "cx-pair" }, h("span", { class: "cx-pair-label", text: label }),
    hField.node, wField.node);
  return { h: hField.input, w: wField.input, node };
}

function readInt(input) {
  const value = Number.parseInt(input.value, 10);
  return Number.isFinite(value) ? value : null;
}

// ------------------------------------------------------------------------------ grids

function grid(rows, cols, cls) {
  const node = h("div", { class: "cx-grid " + cls });
  node.style.gridTemplateColumns = `repeat(${cols}, var(--cx-cell))`;
  node.style.gridTemplateRows = `repeat(${rows}, var(--cx-cell))`;
  return node;
}

function cell(text, cls, data) {
  const node = h("div", { class: "cx-cell " + cls, text });
  if (text.length > 3) node.classList.add("cx-small");
  for (const [key, value] of Object.entries(data)) node.dataset[key] = String(value);
  return node;
}

// ------------------------------------------------------------------------------ the explorer

function render({ model, el }) {
  const kind = model.get("_kind");
  const names = kind === "conv" ? CONV_SETTINGS : POOL_SETTINGS;
  const root = h("div", { class: "cx-root cx-" + kind });
  const controls = h("div", { class: "cx-controls" });
  const call = h("code", { class: "cx-call" });
  const formula = h("div", { class: "cx-formula" });
  const shape = h("div", { class: "cx-shape" });
  const error = h("div", { class: "cx-error" });
  const pictures = h("div", { class: "cx-pictures" });
  const info = h("div", { class: "cx-info" });
  const legend = h("div", { class: "cx-legend" });
  root.append(controls, call, formula, shape, error, pictures, info, legend);
  el.append(root);

  const fields = kind === "conv" ? convControls(controls) : poolControls(controls);
  let hovered = null;
  let cells = null; // the DOM cells of the current drawing

  // data-synced="true" once the drawing shows the kernel's answer for the controls' settings
  // (a change to a value the model already holds sends nothing and stays synced).
  function send(changes) {
    model.set(changes);
    model.save_changes();
    root.dataset.synced = synced() ? "true" : "false";
  }

  function synced() {
    const state = model.get("state") || {};
    const settings = state.settings || {};
    return names.every((n) => JSON.stringify(settings[n]) === JSON.stringify(model.get(n)));
  }

  function fillControls() {
    for (const [name, field] of Object.entries(fields)) field.fill(model.get(name));
  }

  for (const [name, field] of Object.entries(fields)) {
    field.onChange((value) => send({ [name]: value }));
  }

  function redraw() {
    const state = model.get("state") || {};
    call.textContent = state.call || "";
    formula.replaceChildren(...(state.formula || []).map((f) => h("div", { text: f.text })));
    const layer = kind === "conv" ? "torch.nn.Conv2d" : state.call?.split("(")[0].replace("nn.", "torch.nn.");
    if (state.ok) {
      shape.textContent = `${layer} output shape: `;
      shape.append(h("b", { class: "cx-shape-value", text: shapeText(state.output_shape) }));
      shape.dataset.shape = state.output_shape.join(",");
      if (state.pads) {
        shape.append(h("span", {
          class: "cx-pads",
          text: `; padding applied (left, right, top, bottom) = (${state.pads.join(", ")})`,
        }));
      }
      error.textContent = "";
      error.hidden = true;
    } else {
      shape.textContent = state.limit ? "The explorer cannot draw this:" : `${layer} refuses this setting:`;
      shape.dataset.shape = "";
      error.textContent = state.error || "";
      error.hidden = false;
    }
    cells = state.ok ? (kind === "conv" ? drawConv(state) : drawPool(state)) : null;
    if (!cells) pictures.replaceChildren();
    legend.replaceChildren(...(kind === "conv" ? convLegend(state) : poolLegend(state)));
    highlight();
    root.dataset.synced = synced() ? "true" : "false";
  }

  // -- conv -------------------------------------------------------------------------------

  function drawConv(state) {
    const { padded, source, output, pads } = state;
    const [left, , top] = pads;
    const { height, width, padding_mode: mode } = state.settings;
    const inputGrid = grid(padded.length, padded[0].length, "cx-input");
    const input = [];
    const byFlat = new Map();
    padded.forEach((row, r) => {
      input.push([]);
      row.forEach((value, c) => {
        const inside = r >= top && r < top + height && c >= left && c < left + width;
        const data = { pr: r, pc: c, source: source[r][c] };
        if (inside) Object.assign(data, { r: r - top, c: c - left });
        const cls = inside ? "cx-inside" : `cx-pad cx-pad-${mode}`;
        const node = cell(fmt(value), cls, data);
        if (inside) byFlat.set(source[r][c], node);
        else {
          node.addEventListener("mouseenter", () => showSource(node));
          node.addEventListener("mouseleave", () => highlight());
        }
        input[r].push(node);
        inputGrid.append(node);
      });
    });
    const outputGrid = grid(output.length, output[0].length, "cx-output");
    const out = output.map((row, i) => row.map((value, j) => {
      const node = cell(fmt(value), "cx-out", { i, j });
      node.addEventListener("mouseenter", () => { hovered = [i, j]; highlight(); });
      node.addEventListener("mouseleave", () => { hovered = null; highlight(); });
      node.addEventListener("click", () => pin(i, j));
      outputGrid.append(node);
      return node;
    }));
    pictures.replaceChildren(
      panel("padded input", inputGrid),
      h("div", { class: "cx-arrow", text: "→" }),
      panel("output (all-ones kernel, no bias)", outputGrid),
    );
    return { input, out, byFlat };
  }

  function showSource(node) {
    const flat = Number(node.dataset.source);
    const state = model.get("state");
    if (flat < 0) {
      info.textContent = "This padding cell holds 0 (padding_mode='zeros').";
      return;
    }
    const width = state.settings.width;
    const [r, c] = [Math.floor(flat / width), flat % width];
    info.textContent = `This padding cell copies input cell (${r}, ${c}) = ${node.textContent} `
      + `(padding_mode='${state.settings.padding_mode}').`;
    cells.byFlat.get(flat)?.classList.add("cx-source");
  }

  function convHighlight(state, i, j) {
    const [kh, kw] = state.settings.kernel_size;
    const [sh, sw] = state.settings.stride;
    const [dh, dw] = state.settings.dilation;
    const width = state.settings.width;
    const rows = cells.input.length, cols = cells.input[0].length;
    const fed = new Set();
    let inPadding = 0;
    for (let r = i * sh; r <= i * sh + dh * (kh - 1) && r < rows; r++) {
      for (let c = j * sw; c <= j * sw + dw * (kw - 1) && c < cols; c++) {
        cells.input[r][c].classList.add("cx-span");
        const tap = (r - i * sh) % dh === 0 && (c - j * sw) % dw === 0;
        if (!tap) { cells.input[r][c].classList.add("cx-hole"); continue; }
        const node = cells.input[r][c];
        node.classList.add("cx-tap");
        if (node.classList.contains("cx-pad")) inPadding++;
        const flat = Number(node.dataset.source);
        if (flat >= 0) fed.add(flat);
      }
    }
    for (const flat of fed) cells.byFlat.get(flat).classList.add("cx-feeds");
    const list = [...fed].sort((a, b) => a - b)
      .map((f) => `(${Math.floor(f / width)}, ${f % width})`);
    info.textContent = `output (${i}, ${j}) = ${fmt(state.output[i][j])}: ${kh * kw} taps `
      + `(${inPadding} in the padding) read ${fed.size} input cell(s): ${list.join(" ")}`;
  }

  // -- pooling ----------------------------------------------------------------------------

  function drawPool(state) {
    const [rows, cols] = state.grid;
    const { height, width, padding: [ph, pw], op } = state.settings;
    const inputGrid = grid(rows, cols, "cx-input");
    const input = [];
    const dropped = state.formula.map((f) => f.dropped);
    const [kh, kw] = state.settings.kernel_size;
    const [dh, dw] = state.dilation;
    for (let r = 0; r < rows; r++) {
      input.push([]);
      for (let c = 0; c < cols; c++) {
        const inside = r >= ph && r < ph + height && c >= pw && c < pw + width;
        const padding = r < height + 2 * ph && c < width + 2 * pw;
        let node;
        if (inside) {
          node = cell(fmt(state.input[r - ph][c - pw]), "cx-inside", { pr: r, pc: c, r: r - ph, c: c - pw });
        } else if (padding) {
          node = cell(op === "max" ? "−∞" : "0", "cx-pad cx-pad-" + op, { pr: r, pc: c });
        } else {
          node = cell("", "cx-outside", { pr: r, pc: c });
        }
        const inDropped = (dropped[0] !== null && r >= dropped[0] && r <= dropped[0] + dh * (kh - 1))
          || (dropped[1] !== null && c >= dropped[1] && c <= dropped[1] + dw * (kw - 1));
        if (inDropped) node.classList.add("cx-dropped");
        input[r].push(node);
        inputGrid.append(node);
      }
    }
    const outputGrid = grid(state.output.length, state.output[0].length, "cx-output");
    const out = state.output.map((row, i) => row.map((value, j) => {
      const node = cell(fmt(value), "cx-out", { i, j });
      node.addEventListener("mouseenter", () => { hovered = [i, j]; highlight(); });
      node.addEventListener("mouseleave", () => { hovered = null; highlight(); });
      node.addEventListener("click", () => pin(i, j));
      outputGrid.append(node);
      return node;
    }));
    pictures.replaceChildren(
      panel(op === "max" ? "input, padded with −∞" : "input, padded with zeros", inputGrid),
      h("div", { class: "cx-arrow", text: "→" }),
      panel("output", outputGrid),
    );
    return { input, out };
  }

  function poolHighlight(state, i, j) {
    const [kh, kw] = state.settings.kernel_size;
    const [sh, sw] = state.stride;
    const [dh, dw] = state.dilation;
    const { width, op } = state.settings;
    const rows = cells.input.length, cols = cells.input[0].length;
    for (let r = i * sh; r <= i * sh + dh * (kh - 1) && r < rows; r++) {
      for (let c = j * sw; c <= j * sw + dw * (kw - 1) && c < cols; c++) {
        const node = cells.input[r][c];
        node.classList.add("cx-span");
        const tap = (r - i * sh) % dh === 0 && (c - j * sw) % dw === 0;
        if (!tap) { node.classList.add("cx-hole"); continue; }
        node.classList.add("cx-tap");
        if (op === "avg" && node.classList.contains("cx-inside")) node.classList.add("cx-feeds");
      }
    }
    const value = fmt(state.output[i][j]);
    if (op === "max") {
      const flat = state.winners[i][j];
      const [r, c] = [Math.floor(flat / width), flat % width];
      const [ph, pw] = state.settings.padding;
      cells.input[r + ph][c + pw].classList.add("cx-winner");
      info.textContent = `output (${i}, ${j}) = ${value}: the maximum of its window, `
        + `input cell (${r}, ${c}) (torch's index ${flat} = ${r}·${width} + ${c})`;
    } else {
      info.textContent = `output (${i}, ${j}) = ${fmt(state.sums[i][j])} / `
        + `${state.divisor[i][j]} = ${value} (torch's divisor for this window)`;
    }
  }

  // -- both -------------------------------------------------------------------------------

  function highlight() {
    if (!cells) { info.textContent = ""; return; }
    for (const row of cells.input) {
      for (const node of row) {
        node.classList.remove("cx-tap", "cx-hole", "cx-span", "cx-feeds", "cx-winner", "cx-source");
      }
    }
    for (const row of cells.out) for (const node of row) node.classList.remove("cx-current");
    const state = model.get("state");
    let target = hovered || model.get("cell");
    if (!target || target[0] >= cells.out.length || target[1] >= cells.out[0].length) {
      target = [0, 0];
    }
    const [i, j] = target;
    cells.out[i][j].classList.add("cx-current");
    if (kind === "conv") convHighlight(state, i, j);
    else poolHighlight(state, i, j);
  }

  function pin(i, j) {
    model.set("cell", [i, j]);
    model.save_changes();
  }

  function panel(title, node) {
    return h("div", { class: "cx-panel" }, h("div", { class: "cx-panel-title", text: title }), node);
  }

  function convLegend(state) {
    const mode = state.settings?.padding_mode || "zeros";
    return [
      h("span", { class: "cx-key cx-inside", text: "input" }),
      h("span", { class: `cx-key cx-pad cx-pad-${mode}`, text: "padding" }),
      h("span", { class: "cx-key cx-tap", text: "kernel tap" }),
      h("span", { class: "cx-key cx-hole", text: "dilation hole" }),
      h("span", { class: "cx-key cx-feeds", text: "feeds the output cell" }),
      h("span", { class: "cx-mode", text: MODE_TEXT[mode] || "" }),
      h("span", { class: "cx-hint", text: "Point at an output cell; click to pin it." }),
    ];
  }

  function poolLegend(state) {
    const op = state.settings?.op || "max";
    const keys = [
      h("span", { class: "cx-key cx-inside", text: "input" }),
      h("span", { class: `cx-key cx-pad cx-pad-${op}`, text: op === "max" ? "−∞ padding" : "zero padding" }),
      h("span", { class: "cx-key cx-outside", text: "past the padding (ignored)" }),
      h("span", { class: "cx-key cx-tap", text: "window" }),
    ];
    if (op === "max") keys.push(h("span", { class: "cx-key cx-winner", text: "maximum (torch's index)" }));
    if (state.formula?.some((f) => f.dropped !== null)) {
      keys.push(h("span", { class: "cx-key cx-dropped", text: "ceil_mode window torch drops" }));
    }
    keys.push(h("span", { class: "cx-hint", text: "Point at an output cell; click to pin it." }));
    return keys;
  }

  model.on("change:state", redraw);
  model.on("change:cell", highlight);
  for (const name of names) {
    model.on(`change:${name}`, () => {
      fillControls();
      root.dataset.synced = synced() ? "true" : "false";
    });
  }
  fillControls();
  redraw();
  return () => { el.replaceChildren(); };
}

// -------------------------------------------------------------------------- control panels

// Each field: fill(value from the model) and onChange(callback(new trait value)).
function pair(field) {
  return {
    fill(value) {
      if (value) { field.h.value = value[0]; field.w.value = value[1]; }
    },
    onChange(callback) {
      const fire = () => {
        const [a, b] = [readInt(field.h), readInt(field.w)];
        if (a !== null && b !== null) callback([a, b]);
      };
      field.h.addEventListener("input", fire);
      field.w.addEventListener("input", fire);
    },
  };
}

function single(input, parse = readInt) {
  return {
    fill(value) {
      if (input.type === "checkbox") input.checked = Boolean(value);
      else input.value = value;
    },
    onChange(callback) {
      const event = input.tagName === "SELECT" || input.type === "checkbox" ? "change" : "input";
      input.addEventListener(event, () => {
        const value = parse(input);
        if (value !== null) callback(value);
      });
    },
  };
}

function convControls(controls) {
  const height = numberField("H", "height", 1, 16);
  const width = numberField("W", "width", 1, 16);
  const kernel = pairField("kernel_size", "kernel_size", 0, 9);
  const stride = pairField("stride", "stride", 0, 6);
  const dilation = pairField("dilation", "dilation", 0, 6);
  const padKind = selectField("padding", "padding_kind", [
    ["numbers", "numbers"], ["same", "'same'"], ["valid", "'valid'"],
  ]);
  const padH = numberField("h", "padding_h", 0, 8);
  const padW = numberField("w", "padding_w", 0, 8);
  const mode = selectField("padding_mode", "padding_mode", MODES.map((m) => [m, `'${m}'`]));
  const values = selectField("input", "values", [["arange", "1, 2, 3, …"], ["ones", "all ones"]]);
  const padding = h("div", { class: "cx-pair" }, padKind.node, padH.node, padW.node);
  controls.append(
    h("div", { class: "cx-pair" }, h("span", { class: "cx-pair-label", text: "input" }),
      height.node, width.node),
    kernel.node, stride.node, padding, dilation.node, mode.node, values.node,
  );
  const paddingField = {
    fill(value) {
      if (typeof value === "string") {
        padKind.input.value = value;
      } else {
        padKind.input.value = "numbers";
        padH.input.value = value[0];
        padW.input.value = value[1];
      }
      padH.input.disabled = padW.input.disabled = typeof value === "string";
    },
    onChange(callback) {
      const fire = () => {
        const kindValue = padKind.input.value;
        padH.input.disabled = padW.input.disabled = kindValue !== "numbers";
        if (kindValue !== "numbers") { callback(kindValue); return; }
        const [a, b] = [readInt(padH.input), readInt(padW.input)];
        if (a !== null && b !== null) callback([a, b]);
      };
      padKind.input.addEventListener("change", fire);
      padH.input.addEventListener("input", fire);
      padW.input.addEventListener("input", fire);
    },
  };
  return {
    height: single(height.input),
    width: single(width.input),
    kernel_size: pair(kernel),
    stride: pair(stride),
    padding: paddingField,
    dilation: pair(dilation),
    padding_mode: single(mode.input, (s) => s.value),
    values: single(values.input, (s) => s.value),
  };
}

function poolControls(controls) {
  const op = selectField("layer", "op", [["max", "MaxPool2d"], ["avg", "AvgPool2d"]]);
  const height = numberField("H", "height", 1, 16);
  const width = numberField("W", "width", 1, 16);
  const kernel = pairField("kernel_size", "kernel_size", 0, 9);
  const strideDefault = checkField("stride = kernel_size (default)", "stride_default");
  const stride = pairField("stride", "stride", 0, 6);
  stride.node.append(strideDefault.node);
  const padding = pairField("padding", "padding", 0, 5);
  const dilation = pairField("dilation", "dilation", 0, 6);
  const ceil = checkField("ceil_mode", "ceil_mode");
  const include = checkField("count_include_pad", "count_include_pad");
  const negative = checkField("negative input", "negative");
  const shuffle = h("button", { class: "cx-button", text: "new input", "data-control": "shuffle" });
  controls.append(
    op.node,
    h("div", { class: "cx-pair" }, h("span", { class: "cx-pair-label", text: "input" }),
      height.node, width.node),
    kernel.node, stride.node, padding.node, dilation.node, ceil.node, include.node,
    negative.node, shuffle,
  );
  let seed = 0;
  const strideField = {
    fill(value) {
      strideDefault.input.checked = value === null;
      stride.h.disabled = stride.w.disabled = value === null;
      if (value !== null) { stride.h.value = value[0]; stride.w.value = value[1]; }
    },
    onChange(callback) {
      const fire = () => {
        stride.h.disabled = stride.w.disabled = strideDefault.input.checked;
        if (strideDefault.input.checked) { callback(null); return; }
        const [a, b] = [readInt(stride.h), readInt(stride.w)];
        if (a !== null && b !== null) callback([a, b]);
      };
      strideDefault.input.addEventListener("change", fire);
      stride.h.addEventListener("input", fire);
      stride.w.addEventListener("input", fire);
    },
  };
  const opField = single(op.input, (s) => s.value);
  const opFill = opField.fill;
  opField.fill = (value) => {
    opFill(value);
    dilation.h.disabled = dilation.w.disabled = value !== "max";
    include.input.disabled = value !== "avg";
  };
  return {
    op: opField,
    height: single(height.input),
    width: single(width.input),
    kernel_size: pair(kernel),
    stride: strideField,
    padding: pair(padding),
    dilation: pair(dilation),
    ceil_mode: single(ceil.input, (c) => c.checked),
    count_include_pad: single(include.input, (c) => c.checked),
    negative: single(negative.input, (c) => c.checked),
    seed: {
      fill(value) { seed = value; },
      onChange(callback) { shuffle.addEventListener("click", () => callback(seed + 1)); },
    },
  };
}

export default { render };
