// The index's controls: which run's images and figures the tiles show, sorting, name filter, threshold.
// Plain JavaScript over the data the page carries (no request is made: the page works from disk).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("gallery-data").textContent);
  var grid = document.getElementById("grid");
  if (!grid) { return; }
  var tiles = Array.prototype.slice.call(grid.querySelectorAll(".tile"));
  var controls = {
    run: document.getElementById("run"),
    sort: document.getElementById("sort"),
    filter: document.getElementById("filter"),
    threshold: document.getElementById("threshold"),
  };
  var count = document.getElementById("count");
  var foundOption = controls.sort.querySelector("option[value=found]");

  function formatConfidence(c) {
    if (c === null || c < 0) { return "empty"; }
    return c < 0.9999 ? (100 * c).toFixed(2) + "%" : (100 * c).toFixed(4) + "%";
  }

  function cellOf(i, run) { return data.classes[i].r[run]; }

  function showRun(run) {
    foundOption.textContent = data.runs[run].found === "steps" ? "steps" : "generation found";
    tiles.forEach(function (tile) {
      var i = +tile.dataset.i, cell = cellOf(i, run);
      var img = tile.querySelector("img"), conf = tile.querySelector(".conf");
      conf.textContent = cell ? formatConfidence(cell[0]) : "\u2014";
      if (cell && cell[2]) {
        if (!img) {
          img = document.createElement("img");
          img.loading = "lazy"; img.decoding = "async"; img.width = img.height = 128;
          img.alt = tile.title;
          var empty = tile.querySelector(".noimg");
          tile.replaceChild(img, empty);
        }
        img.classList.toggle("px", cell[3] <= 128);
        if (img.getAttribute("src") !== cell[2]) { img.setAttribute("src", cell[2]); }
      } else if (img) {
        var span = document.createElement("span");
        span.className = "noimg"; span.textContent = cell ? "empty" : "not in this run";
        tile.replaceChild(span, img);
      }
    });
  }

  function apply() {
    var run = controls.run ? +controls.run.value : 0;
    var query = controls.filter.value.trim().toLowerCase();
    var threshold = parseFloat(controls.threshold.value);
    threshold = isNaN(threshold) ? 0 : threshold / 100;
    var sort = controls.sort.value;
    var shown = 0;
    tiles.forEach(function (tile) {
      var i = +tile.dataset.i, cls = data.classes[i], cell = cellOf(i, run);
      var text = (cls.k + ": " + cls.name).toLowerCase();
      var conf = cell ? cell[0] : -1;
      var visible = (!query || text.indexOf(query) >= 0) && (threshold <= 0 || conf >= threshold);
      tile.hidden = !visible;
      if (visible) { shown += 1; }
    });
    var order = tiles.slice().sort(function (a, b) {
      var i = +a.dataset.i, j = +b.dataset.i, ci = cellOf(i, run), cj = cellOf(j, run), d = 0;
      if (sort === "confidence") {
        d = (cj ? cj[0] : -2) - (ci ? ci[0] : -2);
      } else if (sort === "found") {
        var fi = ci && ci[1] !== null ? ci[1] : Infinity, fj = cj && cj[1] !== null ? cj[1] : Infinity;
        d = fi === fj ? 0 : (fi < fj ? -1 : 1);
      }
      return d || (i - j);
    });
    // Move tiles only when the order changed: moving a tile between a press and a release loses the click.
    var current = grid.children, same = current.length === order.length;
    for (var n = 0; same && n < order.length; n += 1) { same = current[n] === order[n]; }
    if (!same) {
      var fragment = document.createDocumentFragment();
      order.forEach(function (tile) { fragment.appendChild(tile); });
      grid.appendChild(fragment);
    }
    count.textContent = shown + " of " + tiles.length + " classes";
  }

  // No inline handler in the page: the form is never sent anywhere.
  document.getElementById("controls").addEventListener("submit", function (event) { event.preventDefault(); });
  if (controls.run) {
    controls.run.addEventListener("change", function () { showRun(+controls.run.value); apply(); });
  }
  controls.sort.addEventListener("change", apply);
  ["input", "change", "search"].forEach(function (kind) {
    controls.filter.addEventListener(kind, apply);
    controls.threshold.addEventListener(kind, apply);
  });
  showRun(controls.run ? +controls.run.value : 0);
  apply();
}());
