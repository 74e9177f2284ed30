// Draws every chart on the page with plotly.js. A chart is an element with data-chart="ID" whose figure
// (data and layout) sits in <script type="application/json" id="ID">, written by Django's json_script,
// so no markup is ever built from data. Charts inside htmx-swapped fragments are drawn after the swap.
(function () {
  function draw(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.dataset.chart);
      if (!source || !window.Plotly) return;
      var figure = JSON.parse(source.textContent);
      if (!figure.data.length) { el.textContent = "No results to chart yet."; return; }
      shortLabels(figure);
      Plotly.newPlot(el, figure.data, figure.layout, {displaylogo: false, responsive: true});
    });
  }
  // Model names on a category axis ("demo-t5 + soft prompt #3 (ce+kl+rep)") are cut short under the axis,
  // so that a phone shows them whole; the data keep the full names, which the hover label shows.
  var MAX_LABEL = 16;
  function shortLabels(figure) {
    var names = [];
    figure.data.forEach(function (trace) {
      (trace.x || []).forEach(function (x) { if (typeof x === "string" && names.indexOf(x) < 0) names.push(x); });
    });
    if (!names.some(function (name) { return name.length > MAX_LABEL; })) return;
    var used = {}, text = names.map(function (name) {
      var label = name.length > MAX_LABEL ? name.slice(0, MAX_LABEL - 1).trim() + "…" : name, n = 2;
      while (used[label]) label = name.slice(0, MAX_LABEL - 3).trim() + "…" + n++;
      used[label] = true;
      return label;
    });
    figure.layout.xaxis = Object.assign({}, figure.layout.xaxis, {tickvals: names, ticktext: text, tickangle: -30});
    figure.data.forEach(function (trace) {
      if (trace.hovertemplate === undefined && trace.type === "bar") trace.hovertemplate = "%{x}: %{y}<extra>%{fullData.name}</extra>";
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
