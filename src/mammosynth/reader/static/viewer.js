// mammosynth reader viewer: window/level, zoom, pan, marks, keyboard shortcuts.
// Plain script, no inline code (the CSP forbids it); state lives per canvas.
(function () {
  "use strict";
  const reader = document.getElementById("reader");
  const feedback = document.getElementById("feedback");
  const root = reader || feedback;
  if (!root) return;
  const kind = reader ? reader.dataset.kind : "feedback";
  const marking = kind === "detection" || kind === "training";
  const rmax = reader ? Number(reader.dataset.max) : 5;
  const marks = [];
  const views = [];
  let center = 128, width = 256, invert = false, boxMode = false;
  const t0 = performance.now();

  function lut() {
    const t = new Uint8ClampedArray(256);
    const lo = center - width / 2;
    for (let i = 0; i < 256; i++) {
      let v = ((i - lo) / Math.max(width, 1)) * 255;
      v = Math.min(255, Math.max(0, v));
      t[i] = invert ? 255 - v : v;
    }
    return t;
  }

  function View(canvas) {
    this.canvas = canvas; this.index = Number(canvas.dataset.index);
    this.ctx = canvas.getContext("2d");
    this.img = null; this.src = null; this.off = document.createElement("canvas");
    this.zoom = 1; this.px = 0; this.py = 0; this.overlay = [];
  }
  View.prototype.fit = function () {
    const r = this.canvas.getBoundingClientRect();
    this.canvas.width = Math.max(1, Math.round(r.width * devicePixelRatio));
    this.canvas.height = Math.max(1, Math.round(r.height * devicePixelRatio));
    if (!this.img) return;
    const s = Math.min(this.canvas.width / this.img.width, this.canvas.height / this.img.height);
    this.base = s; this.zoom = 1;
    this.px = (this.canvas.width - this.img.width * s) / 2; this.py = (this.canvas.height - this.img.height * s) / 2;
  };
  View.prototype.applyWL = function () {
    if (!this.src) return;
    const t = lut(), d = this.out.data, s = this.src.data;
    for (let i = 0; i < s.length; i += 4) { const v = t[s[i]]; d[i] = d[i + 1] = d[i + 2] = v; d[i + 3] = 255; }
    this.off.getContext("2d").putImageData(this.out, 0, 0);
    this.draw();
  };
  View.prototype.toImage = function (cx, cy) {
    const r = this.canvas.getBoundingClientRect();
    const x = (cx - r.left) * devicePixelRatio, y = (cy - r.top) * devicePixelRatio;
    const s = this.base * this.zoom;
    return [(x - this.px) / s, (y - this.py) / s];
  };
  View.prototype.draw = function () {
    const c = this.ctx; c.setTransform(1, 0, 0, 1, 0, 0); c.fillStyle = "#000";
    c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.img) return;
    const s = this.base * this.zoom;
    c.setTransform(s, 0, 0, s, this.px, this.py); c.imageSmoothingEnabled = this.zoom < 2;
    c.drawImage(this.off, 0, 0);
    c.lineWidth = 2 / s;
    const self = this;
    function shape(m, color) {
      c.strokeStyle = color;
      if ("x0" in m) { c.strokeRect(m.x0, m.y0, m.x1 - m.x0, m.y1 - m.y0); }
      else { c.beginPath(); c.arc(m.x, m.y, 12 / s, 0, 2 * Math.PI); c.stroke(); }
      if (m.rating !== undefined) { c.fillStyle = color; c.font = (14 / s) + "px sans-serif";
        c.fillText(String(m.rating), ("x0" in m ? m.x1 + 4 / s : m.x + 14 / s), ("x0" in m ? m.y0 : m.y - 10 / s)); }
    }
    this.overlay.forEach(function (o) { if (o.image === self.index) shape(o, o.color); });
    marks.forEach(function (m) { if (m.image === self.index) shape(m, "#f3f"); });
    if (this.drag && this.drag.mode === "box" && this.drag.cur) {
      const a = this.drag.start, b = this.drag.cur;
      shape({x0: Math.min(a[0], b[0]), y0: Math.min(a[1], b[1]), x1: Math.max(a[0], b[0]), y1: Math.max(a[1], b[1])}, "#ff0");
    }
  };
  View.prototype.load = function () {
    const self = this, im = new Image();
    im.onload = function () {
      self.img = im; self.off.width = im.width; self.off.height = im.height;
      const g = self.off.getContext("2d"); g.drawImage(im, 0, 0);
      self.src = g.getImageData(0, 0, im.width, im.height); self.out = g.createImageData(im.width, im.height);
      self.fit(); self.applyWL();
      if (views.every(function (v) { return v.img; })) document.body.dataset.loaded = "1";
    };
    im.src = this.canvas.dataset.src;
  };

  function updateWL() {
    const el = document.getElementById("wl");
    if (el) el.textContent = "W " + Math.round(width) + " L " + Math.round(center);
    views.forEach(function (v) { v.applyWL(); });
  }
  function zoomBy(f) { views.forEach(function (v) {
    const cx = v.canvas.width / 2, cy = v.canvas.height / 2;
    v.px = cx - (cx - v.px) * f; v.py = cy - (cy - v.py) * f; v.zoom *= f; v.draw(); }); }
  function reset() { center = 128; width = 256; invert = false; views.forEach(function (v) { v.fit(); }); updateWL(); }
  function conf() { const el = document.getElementById("markconf"); return el ? Number(el.value) : rmax; }
  function syncMarks() {
    const f = document.getElementById("marks"); if (f) f.value = JSON.stringify(marks);
    const n = document.getElementById("markcount"); if (n) n.textContent = marks.length + " mark" + (marks.length === 1 ? "" : "s");
    views.forEach(function (v) { v.draw(); });
  }
  function setBox(on) { boxMode = on; const b = document.getElementById("boxmode"); if (b) b.textContent = "Box: " + (on ? "on" : "off"); }

  document.querySelectorAll("canvas.img").forEach(function (c) {
    const v = new View(c); views.push(v); v.load();
    c.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    c.addEventListener("wheel", function (e) {
      e.preventDefault(); const r = c.getBoundingClientRect(), f = e.deltaY < 0 ? 1.15 : 1 / 1.15;
      const x = (e.clientX - r.left) * devicePixelRatio, y = (e.clientY - r.top) * devicePixelRatio;
      v.px = x - (x - v.px) * f; v.py = y - (y - v.py) * f; v.zoom *= f; v.draw();
    }, {passive: false});
    c.addEventListener("pointerdown", function (e) {
      c.setPointerCapture(e.pointerId);
      const mode = (e.button === 2 || e.ctrlKey) ? "wl" : (marking && boxMode && e.button === 0 && !e.shiftKey) ? "box" : "pan";
      v.drag = {mode: mode, x: e.clientX, y: e.clientY, moved: 0, start: v.toImage(e.clientX, e.clientY), c0: center, w0: width, px: v.px, py: v.py};
    });
    c.addEventListener("pointermove", function (e) {
      const d = v.drag; if (!d) return;
      const dx = e.clientX - d.x, dy = e.clientY - d.y; d.moved = Math.max(d.moved, Math.abs(dx) + Math.abs(dy));
      if (d.mode === "wl") { width = Math.max(1, d.w0 + dx); center = d.c0 + dy; updateWL(); }
      else if (d.mode === "pan") { v.px = d.px + dx * devicePixelRatio; v.py = d.py + dy * devicePixelRatio; v.draw(); }
      else { d.cur = v.toImage(e.clientX, e.clientY); v.draw(); }
    });
    c.addEventListener("pointerup", function (e) {
      const d = v.drag; v.drag = null; if (!d || !marking || !reader) return;
      const p = v.toImage(e.clientX, e.clientY);
      const inside = function (q) { return q[0] >= 0 && q[1] >= 0 && q[0] <= v.img.width && q[1] <= v.img.height; };
      if (d.mode === "box" && d.moved > 4 && inside(d.start) && inside(p)) {
        marks.push({image: v.index, x0: Math.min(d.start[0], p[0]), y0: Math.min(d.start[1], p[1]),
                    x1: Math.max(d.start[0], p[0]), y1: Math.max(d.start[1], p[1]), rating: conf()});
      } else if (d.mode !== "wl" && d.moved <= 4 && inside(p)) {
        marks.push({image: v.index, x: p[0], y: p[1], rating: conf()});
      }
      syncMarks();
    });
  });
  window.addEventListener("resize", function () { views.forEach(function (v) { v.fit(); v.draw(); }); });

  document.querySelectorAll("[data-act]").forEach(function (b) {
    b.addEventListener("click", function () {
      const a = b.dataset.act;
      if (a === "zoomin") zoomBy(1.25); else if (a === "zoomout") zoomBy(0.8);
      else if (a === "reset") reset(); else if (a === "invert") { invert = !invert; updateWL(); }
      else if (a === "box") setBox(!boxMode); else if (a === "undo") { marks.pop(); syncMarks(); }
    });
  });
  const r100 = document.getElementById("rating100"), r100o = document.getElementById("rating100out");
  if (r100) r100.addEventListener("input", function () { r100o.textContent = r100.value; });
  const mc = document.getElementById("markconf"), mco = document.getElementById("markconfout");
  if (mc && mco) mc.addEventListener("input", function () { mco.textContent = mc.value; });
  const form = document.getElementById("answer");
  if (form) form.addEventListener("submit", function () {
    document.getElementById("elapsed").value = String(Math.round(performance.now() - t0));
    document.getElementById("marks").value = JSON.stringify(marks);
  });

  document.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "INPUT" && e.target.type !== "radio" && e.target.type !== "range" || e.target.tagName === "TEXTAREA")) return;
    const k = e.key;
    if (k >= "1" && k <= "5") {
      const radio = document.querySelector('input[name=rating][value="' + k + '"]');
      if (radio) radio.checked = true;
      if (r100) { r100.value = String((Number(k) - 1) * 25); r100o.textContent = r100.value; }
      if (mc) { mc.value = rmax === 5 ? k : String((Number(k) - 1) * 25); if (mco) mco.textContent = mc.value; }
    } else if (k === "Enter") {
      if (form) { e.preventDefault(); form.requestSubmit(); }
      const next = document.getElementById("next"); if (next) next.click();
    } else if (k === "+" || k === "=") zoomBy(1.25);
    else if (k === "-") zoomBy(0.8);
    else if (k === "r" || k === "R") reset();
    else if (k === "i" || k === "I") { invert = !invert; updateWL(); }
    else if ((k === "b" || k === "B") && marking) setBox(!boxMode);
    else if ((k === "u" || k === "U" || k === "Backspace") && marking) { marks.pop(); syncMarks(); }
  });

  if (feedback) {
    const truth = JSON.parse(feedback.dataset.truth), mine = JSON.parse(feedback.dataset.marks);
    views.forEach(function (v) {
      v.overlay = truth.lesions.map(function (l) { return {image: l.image, x0: l.box[0], y0: l.box[1], x1: l.box[2], y1: l.box[3], color: "#3f3"}; })
        .concat(mine.map(function (m) { return Object.assign({color: "#f3f"}, m); }));
    });
  }
})();
