// bertforge attention viewer: plain JavaScript, no library, no network (the live page only POSTs
// the typed text to its own server). Data: attention[layer][head][query][key], rows sum to 1.
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("viz-config").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var ROW = 22;          // head view: pixels per token row
  var HV_WIDTH = 240;    // head view: width of the line area
  var MAP = 64;          // model view: css pixels per small map
  var dpr = window.devicePixelRatio || 1;

  var state = { data: null, layer: 0, heads: [], hide: false, focus: null, visible: [], cache: {} };

  function setState(name, message) {
    document.body.setAttribute("data-state", name);
    $("message").textContent = message || "";
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One colour per head, spread around the hue circle.
  function headHue(h, n) { return Math.round((h * 360) / Math.max(n, 1) + 200) % 360; }
  function headColour(h, n) { return "hsl(" + headHue(h, n) + ", 72%, 42%)"; }
  function hslToRgb(hue, s, l) {
    var a = s * Math.min(l, 1 - l);
    var f = function (k) { var t = (k + hue / 30) % 12; return l - a * Math.max(-1, Math.min(t - 3, 9 - t, 1)); };
    return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
  }

  function showModelInfo(model) {
    if (!model) return;
    var parts = [model.name, model.model_type + " (" + model.architecture + ")",
      model.layers + " layers \u00d7 " + model.heads + " heads", "hidden " + model.hidden_size,
      "up to " + model.max_tokens + " tokens"];
    $("model-info").textContent = parts.join(" \u00b7 ");
  }

  // The (layer, head) matrix over the visible tokens; rows renormalised when specials are hidden.
  function matrix(l, h) {
    var key = l + ":" + h + ":" + (state.hide ? 1 : 0);
    if (state.cache[key]) return state.cache[key];
    var full = state.data.attention[l][h];
    var vis = state.visible;
    var n = vis.length;
    var out = new Float32Array(n * n);
    for (var i = 0; i < n; i++) {
      var row = full[vis[i]];
      var sum = 0;
      for (var j = 0; j < n; j++) { out[i * n + j] = row[vis[j]]; sum += row[vis[j]]; }
      if (state.hide && sum > 0) for (var k = 0; k < n; k++) out[i * n + k] /= sum;
    }
    state.cache[key] = out;
    return out;
  }

  function computeVisible() {
    var d = state.data;
    state.visible = [];
    for (var i = 0; i < d.tokens.length; i++) if (!(state.hide && d.special[i])) state.visible.push(i);
    if (state.visible.length === 0) for (var t = 0; t < d.tokens.length; t++) state.visible.push(t);
  }

  function renderTokens() {
    var d = state.data, box = $("tokens");
    box.textContent = "";
    state.visible.forEach(function (i) {
      var span = el("span", "token" + (d.special[i] ? " special" : "") + (d.segment[i] ? " seg1" : ""), d.tokens[i]);
      span.setAttribute("data-index", i);
      span.title = d.raw_tokens[i] + "  (id " + d.ids[i] + ", position " + i + ")";
      box.appendChild(span);
    });
    box.setAttribute("data-count", state.visible.length);
  }

  function renderControls() {
    var d = state.data, select = $("layer"), toggles = $("head-toggles");
    select.textContent = "";
    for (var l = 0; l < d.layers; l++) {
      var option = el("option", null, "Layer " + (l + 1));
      option.value = l;
      select.appendChild(option);
    }
    state.layer = Math.min(state.layer, d.layers - 1);
    select.value = state.layer;
    toggles.textContent = "";
    state.heads = [];
    for (var h = 0; h < d.heads; h++) {
      state.heads.push(true);
      var chip = el("span", "head-toggle", String(h + 1));
      chip.style.background = headColour(h, d.heads);
      chip.setAttribute("data-head", h);
      chip.setAttribute("role", "checkbox");
      chip.setAttribute("aria-checked", "true");
      chip.title = "head " + (h + 1) + ": click to show or hide";
      toggles.appendChild(chip);
    }
    var names = [];
    d.tokens.forEach(function (t, i) { if (d.special[i] && names.indexOf(t) < 0) names.push(t); });
    $("hide-special-label").textContent = "Hide special tokens" + (names.length ? " (" + names.join(", ") + ")" : "");
  }

  function syncHeadChips() {
    var chips = $("head-toggles").children;
    for (var h = 0; h < chips.length; h++) {
      chips[h].classList.toggle("off", !state.heads[h]);
      chips[h].setAttribute("aria-checked", state.heads[h] ? "true" : "false");
    }
  }

  function renderHeadColumns() {
    var d = state.data;
    ["hv-left", "hv-right"].forEach(function (id) {
      var col = $(id);
      col.textContent = "";
      state.visible.forEach(function (i, pos) {
        var tok = el("div", "hv-tok" + (d.special[i] ? " special" : ""), d.tokens[i]);
        tok.setAttribute("data-pos", pos);
        tok.setAttribute("data-side", id === "hv-left" ? "left" : "right");
        col.appendChild(tok);
      });
    });
  }

  function drawHeadView() {
    var d = state.data, n = state.visible.length, canvas = $("hv-canvas"), view = $("head-view");
    canvas.style.width = HV_WIDTH + "px";
    canvas.style.height = n * ROW + "px";
    canvas.width = Math.round(HV_WIDTH * dpr);
    canvas.height = Math.round(n * ROW * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, HV_WIDTH, n * ROW);
    var focus = state.focus, lines = 0, received = new Float32Array(n), shown = 0;
    for (var h = 0; h < d.heads; h++) {
      if (!state.heads[h]) continue;
      shown++;
      var m = matrix(state.layer, h);
      ctx.strokeStyle = headColour(h, d.heads);
      ctx.lineWidth = focus ? 2.5 : 2;
      for (var i = 0; i < n; i++) {
        if (focus && focus.side === "left" && focus.pos !== i) continue;
        for (var j = 0; j < n; j++) {
          if (focus && focus.side === "right" && focus.pos !== j) continue;
          var w = m[i * n + j];
          if (focus) received[focus.side === "left" ? j : i] += w;
          if (w < 0.02) continue;
          ctx.globalAlpha = Math.min(1, focus ? w * 1.3 : w * 0.9);
          ctx.beginPath();
          ctx.moveTo(0, i * ROW + ROW / 2);
          ctx.lineTo(HV_WIDTH, j * ROW + ROW / 2);
          ctx.stroke();
          lines++;
        }
      }
    }
    ctx.globalAlpha = 1;
    view.setAttribute("data-lines", lines);
    view.setAttribute("data-layer", state.layer);
    view.setAttribute("data-focus", focus ? focus.side + ":" + state.visible[focus.pos] : "");
    // Highlight the focused token, and shade the other side by its (mean over shown heads) weight.
    var left = $("hv-left").children, right = $("hv-right").children;
    for (var k = 0; k < n; k++) {
      left[k].classList.toggle("focused", !!focus && focus.side === "left" && focus.pos === k);
      right[k].classList.toggle("focused", !!focus && focus.side === "right" && focus.pos === k);
      var other = focus ? (focus.side === "left" ? right[k] : left[k]) : null;
      left[k].style.background = "";
      right[k].style.background = "";
      if (other && shown) other.style.background = "rgba(255, 140, 0, " + Math.min(1, received[k] / shown).toFixed(3) + ")";
    }
  }

  function drawMap(canvas, l, h, size) {
    var d = state.data, n = state.visible.length, m = matrix(l, h);
    var rgb = hslToRgb(headHue(h, d.heads), 0.72, 0.42);
    var off = document.createElement("canvas");
    off.width = n; off.height = n;
    var octx = off.getContext("2d"), image = octx.createImageData(n, n);
    for (var p = 0; p < n * n; p++) {
      var w = Math.sqrt(Math.min(1, Math.max(0, m[p])));
      image.data[4 * p] = Math.round(255 - (255 - rgb[0]) * w);
      image.data[4 * p + 1] = Math.round(255 - (255 - rgb[1]) * w);
      image.data[4 * p + 2] = Math.round(255 - (255 - rgb[2]) * w);
      image.data[4 * p + 3] = 255;
    }
    octx.putImageData(image, 0, 0);
    canvas.width = Math.round(size * dpr);
    canvas.height = Math.round(size * dpr);
    var ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  }

  function renderModelView() {
    var d = state.data, box = $("model-view");
    box.textContent = "";
    var grid = el("div", "mv-grid");
    grid.id = "mv-grid";
    grid.style.gridTemplateColumns = "56px repeat(" + d.heads + ", " + (MAP + 2) + "px)";
    grid.appendChild(el("span", "mv-label", ""));
    for (var h = 0; h < d.heads; h++) grid.appendChild(el("span", "mv-label", "head " + (h + 1)));
    for (var l = 0; l < d.layers; l++) {
      grid.appendChild(el("span", "mv-label mv-row-label", "layer " + (l + 1)));
      for (var k = 0; k < d.heads; k++) {
        var canvas = el("canvas", "mv-map");
        canvas.setAttribute("data-layer", l);
        canvas.setAttribute("data-head", k);
        canvas.title = "layer " + (l + 1) + ", head " + (k + 1) + ": click to enlarge";
        drawMap(canvas, l, k, MAP);
        grid.appendChild(canvas);
      }
    }
    box.appendChild(grid);
    box.setAttribute("data-maps", d.layers * d.heads);
  }

  function openZoom(l, h) {
    var d = state.data, n = state.visible.length, canvas = $("zoom-canvas");
    var cell = Math.max(8, Math.min(28, Math.floor(560 / n)));
    var ctx0 = canvas.getContext("2d");
    ctx0.font = "12px ui-monospace, monospace";
    var label = 0;
    state.visible.forEach(function (i) { label = Math.max(label, ctx0.measureText(d.tokens[i]).width); });
    label = Math.ceil(Math.min(label, 140)) + 10;
    var size = n * cell, width = label + size + 4, height = label + size + 4;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    var m = matrix(l, h), rgb = hslToRgb(headHue(h, d.heads), 0.72, 0.42);
    for (var i = 0; i < n; i++) for (var j = 0; j < n; j++) {
      var w = Math.sqrt(Math.min(1, Math.max(0, m[i * n + j])));
      ctx.fillStyle = "rgb(" + Math.round(255 - (255 - rgb[0]) * w) + "," + Math.round(255 - (255 - rgb[1]) * w) +
        "," + Math.round(255 - (255 - rgb[2]) * w) + ")";
      ctx.fillRect(label + j * cell, label + i * cell, cell, cell);
    }
    ctx.fillStyle = "#1f2328";
    ctx.font = Math.min(12, cell - 1) + "px ui-monospace, monospace";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    state.visible.forEach(function (t, i) { ctx.fillText(d.tokens[t], label - 4, label + i * cell + cell / 2, label - 6); });
    state.visible.forEach(function (t, j) {
      ctx.save();
      ctx.translate(label + j * cell + cell / 2, label - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(d.tokens[t], 0, 0, label - 6);
      ctx.restore();
    });
    $("zoom-title").textContent = "layer " + (l + 1) + ", head " + (h + 1) + " (row attends to column)";
    $("zoom").hidden = false;
    $("zoom").setAttribute("data-layer", l);
    $("zoom").setAttribute("data-head", h);
  }

  function closeZoom() { $("zoom").hidden = true; }

  function redrawAll() {
    state.cache = {};
    state.focus = null;
    computeVisible();
    renderTokens();
    renderHeadColumns();
    drawHeadView();
    renderModelView();
  }

  function show(data) {
    state.data = data;
    state.cache = {};
    state.focus = null;
    state.layer = Math.min(state.layer, data.layers - 1);
    if (data.model) showModelInfo(data.model);
    renderControls();
    syncHeadChips();
    $("viewer").hidden = false;
    redrawAll();
    setState("ready", data.length + " tokens, " + data.layers + " layers \u00d7 " + data.heads + " heads");
  }

  function showStaticInput(data) {
    var box = $("static-input");
    box.textContent = "";
    box.appendChild(el("span", "label", "text"));
    box.appendChild(document.createTextNode(data.text));
    if (data.pair) {
      box.appendChild(document.createElement("br"));
      box.appendChild(el("span", "label", "pair"));
      box.appendChild(document.createTextNode(data.pair));
    }
    box.hidden = false;
  }

  function submit(event) {
    event.preventDefault();
    var text = $("text").value, pair = $("pair").value;
    if (!text.trim()) { setState("error", "Type a text first."); return; }
    setState("loading", "Running the model\u2026");
    $("submit").disabled = true;
    fetch(cfg.api, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ text: text, pair: pair.trim() ? pair : null })
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, status: response.status, body: body }; },
        function () { return { ok: false, status: response.status, body: null }; });
    }).then(function (result) {
      if (!result.ok) {
        var detail = result.body && result.body.detail;
        if (Array.isArray(detail)) detail = detail.map(function (e) { return e.msg; }).join("; ");
        setState("error", detail || "The server answered " + result.status + ".");
        return;
      }
      show(result.body);
    }, function (err) {
      setState("error", "Could not reach the server: " + err.message);
    }).then(function () { $("submit").disabled = false; });
  }

  function wire() {
    $("viz-form").addEventListener("submit", submit);
    $("layer").addEventListener("change", function () {
      state.layer = parseInt($("layer").value, 10);
      state.focus = null;
      drawHeadView();
    });
    $("head-toggles").addEventListener("click", function (event) {
      var chip = event.target.closest(".head-toggle");
      if (!chip) return;
      var h = parseInt(chip.getAttribute("data-head"), 10);
      state.heads[h] = !state.heads[h];
      syncHeadChips();
      drawHeadView();
    });
    $("heads-all").addEventListener("click", function () {
      state.heads = state.heads.map(function () { return true; }); syncHeadChips(); drawHeadView();
    });
    $("heads-none").addEventListener("click", function () {
      state.heads = state.heads.map(function () { return false; }); syncHeadChips(); drawHeadView();
    });
    $("hide-special").addEventListener("change", function () {
      state.hide = $("hide-special").checked;
      if (state.data) redrawAll();
    });
    ["hv-left", "hv-right"].forEach(function (id) {
      var col = $(id);
      col.addEventListener("mouseover", function (event) {
        var tok = event.target.closest(".hv-tok");
        if (!tok) return;
        state.focus = { side: tok.getAttribute("data-side"), pos: parseInt(tok.getAttribute("data-pos"), 10) };
        drawHeadView();
      });
      col.addEventListener("mouseleave", function () { state.focus = null; drawHeadView(); });
    });
    $("model-view").addEventListener("click", function (event) {
      var map = event.target.closest("canvas.mv-map");
      if (map) openZoom(parseInt(map.getAttribute("data-layer"), 10), parseInt(map.getAttribute("data-head"), 10));
    });
    $("zoom-close").addEventListener("click", closeZoom);
    $("zoom").addEventListener("click", function (event) { if (event.target === $("zoom")) closeZoom(); });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape") closeZoom(); });
  }

  wire();
  showModelInfo(cfg.model);
  if (cfg.mode === "static") {
    $("viz-form").hidden = true;
    showStaticInput(cfg.data);
    show(cfg.data);
  } else {
    if (cfg.text) $("text").value = cfg.text;
    setState("empty", "Type a text (and optionally a second one) and press Show attention.");
  }
})();
