// Quanzi console behaviour: charts (Plotly from the installed plotly package), bulk selection,
// confirmations. No inline scripts: the page's data arrives as JSON in <script type="application/json">.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "zh-CN";

  function drawCharts() {
    if (typeof window.Plotly === "undefined") return;
    var font = getComputedStyle(document.body).fontFamily;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var src = document.getElementById(el.getAttribute("data-chart"));
      if (!src || el.getAttribute("data-drawn")) return;
      var spec = JSON.parse(src.textContent);
      var layout = Object.assign({
        margin: { l: 48, r: 16, t: 16, b: 40 },
        font: { family: font, size: 12, color: "#1c2430" },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        legend: { orientation: "h", y: -0.18 },
        xaxis: { gridcolor: "#eef1f5" }, yaxis: { gridcolor: "#eef1f5", rangemode: "tozero" }
      }, spec.layout || {});
      window.Plotly.newPlot(el, spec.data || [], layout, {
        displaylogo: false, responsive: true, locale: lang === "zh-CN" ? "zh-CN" : "en",
        modeBarButtonsToRemove: ["lasso2d", "select2d"]
      });
      el.setAttribute("data-drawn", "1");
    });
  }

  function bulkSelect() {
    document.querySelectorAll("[data-select-all]").forEach(function (box) {
      var scope = document.getElementById(box.getAttribute("data-select-all"));
      if (!scope) return;
      var update = function () {
        var n = scope.querySelectorAll("input[data-row]:checked").length;
        document.querySelectorAll("[data-selected-count]").forEach(function (c) { c.textContent = String(n); });
      };
      box.addEventListener("change", function () {
        scope.querySelectorAll("input[data-row]").forEach(function (r) { r.checked = box.checked; });
        update();
      });
      scope.addEventListener("change", update);
      update();
    });
  }

  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
  }

  function autoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { if (sel.form) sel.form.submit(); });
    });
  }

  // A table that scrolls sideways (phones) must be reachable and scrollable by keyboard.
  function scrollRegions() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth + 1 || wrap.hasAttribute("tabindex")) return;
      var heading = wrap.closest("section, .card");
      var title = heading ? heading.querySelector("h1, h2, h3") : null;
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", title ? title.textContent.trim() : document.title);
    });
  }

  function ready() { drawCharts(); bulkSelect(); confirmations(); autoSubmit(); scrollRegions(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else { ready(); }
  window.addEventListener("load", function () { drawCharts(); scrollRegions(); });
  window.addEventListener("resize", scrollRegions);
})();
