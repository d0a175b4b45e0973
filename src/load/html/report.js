// chatops load report: hovering a chart shows every series at that second
// and moves a cursor across all charts. No library, no network.
(function () {
  "use strict";
  var el = document.getElementById("chatops-data");
  if (!el) return;
  var data = JSON.parse(el.textContent);
  var box = document.getElementById("charts");
  var tip = box.querySelector(".tip");
  var figs = Array.prototype.slice.call(box.querySelectorAll("figure.chart"));
  var cursors = figs.map(function (f) { return f.querySelector("line.cursor"); });

  function clock(t) {
    var s = Math.round(t), m = Math.floor(s / 60), r = s % 60;
    return m + ":" + (r < 10 ? "0" : "") + r;
  }
  function fmt(v, unit) {
    if (v === null || v === undefined) return "–";
    var s = Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en") : String(v);
    return unit === "" ? s : unit === "/s" ? s + "/s" : s + " " + unit;
  }
  function stageAt(t) {
    for (var i = 0; i < data.stages.length; i++) {
      var s = data.stages[i];
      if (t >= s[1] - 0.5 && t <= s[2] + 0.5) return s[0];
    }
    return "between stages";
  }
  function refAt(ref, t) {
    for (var i = 0; i < ref.s.length; i++) {
      if (t >= ref.s[i][0] && t <= ref.s[i][1]) return ref.s[i][2];
    }
    return null;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function hide() {
    tip.hidden = true;
    cursors.forEach(function (c) { if (c) { c.setAttribute("x1", -9); c.setAttribute("x2", -9); } });
  }
  figs.forEach(function (fig) {
    var chart = data.charts[Number(fig.getAttribute("data-chart"))];
    var plot = fig.querySelector("svg.plot");
    if (!chart || !plot) return;
    fig.addEventListener("mouseleave", hide);
    fig.addEventListener("mousemove", function (ev) {
      var r = plot.getBoundingClientRect();
      if (ev.clientX < r.left || ev.clientX > r.right || r.width <= 0) { hide(); return; }
      var t = Math.round((ev.clientX - r.left) / r.width * (data.n - 1));
      cursors.forEach(function (c) { if (c) { c.setAttribute("x1", t); c.setAttribute("x2", t); } });
      var h = "<b>" + clock(t) + " · " + esc(stageAt(t)) + "</b>";
      chart.series.forEach(function (s) {
        h += '<div><i style="--c:' + s.c + '"></i>' + esc(s.n) + ": " + fmt(s.v[t], chart.unit) + "</div>";
      });
      chart.refs.forEach(function (ref) {
        var v = refAt(ref, t);
        if (v !== null) h += "<div>" + esc(ref.n) + ": " + fmt(v, chart.unit) + "</div>";
      });
      tip.innerHTML = h;
      tip.hidden = false;
      var b = box.getBoundingClientRect();
      var x = ev.clientX - b.left + 14, y = ev.clientY - b.top + 12;
      if (x + tip.offsetWidth > b.width) x = ev.clientX - b.left - tip.offsetWidth - 14;
      tip.style.left = x + "px";
      tip.style.top = y + "px";
    });
  });
  document.documentElement.setAttribute("data-charts-ready", String(figs.length));
})();
