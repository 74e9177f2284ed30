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
      Plotly.newPlot(el, figure.data, figure.layout, {displaylogo: false, responsive: true});
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
