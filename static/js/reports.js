// The Overview's charts (templates/analytics/overview.html): counts and rates over time, drawn
// from the JSON the page carries; the same figures are in the table under them.
(function () {
  // The period picker shows the month field for "a month" and the days for "from … to" only
  // (without JavaScript all are shown, and the server reads what the period needs).
  const form = document.getElementById("report-period");
  const kind = form && form.querySelector("[name=period]");
  if (kind) {
    const sync = () => {
      form.querySelector("[data-field=month]").hidden = kind.value !== "month";
      for (const name of ["from", "to"]) form.querySelector(`[data-field=${name}]`).hidden = kind.value !== "custom";
    };
    kind.addEventListener("change", sync);
    sync();
  }
})();

(function () {
  const source = document.getElementById("report-chart-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const colours = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa"];
  const datasets = (sets) => sets.map((set, i) => ({
    label: set.label, data: set.data, borderColor: colours[i % colours.length],
    backgroundColor: colours[i % colours.length], tension: 0.25, pointRadius: data.labels.length > 45 ? 0 : 2,
    spanGaps: true,
  }));
  const options = (unit) => ({
    responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    scales: {
      x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
      y: { beginAtZero: true, ticks: unit ? { callback: (v) => v + unit } : { precision: 0 } },
    },
  });
  const draw = (id, sets, unit) => {
    const canvas = document.getElementById(id);
    if (canvas) new Chart(canvas, { type: "line", data: { labels: data.labels, datasets: datasets(sets) }, options: options(unit) });
  };
  draw("chart-counts", data.counts, "");
  draw("chart-rates", data.rates, " %");
  draw("chart-money", data.money || [], "");
})();
