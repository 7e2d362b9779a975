// Charts of the journey, cohort and deliverability pages, drawn from the JSON the page
// carries ({labels, charts: [{id, datasets, unit, stacked}]}); each chart's figures are in a table.
(function () {
  const source = document.getElementById("journey-chart-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const colours = ["#90a4ae", "#1e88e5", "#43a047", "#8e24aa", "#fb8c00", "#e53935", "#00897b", "#6d4c41"];
  for (const chart of data.charts) {
    const canvas = document.getElementById(chart.id);
    if (!canvas) continue;
    const datasets = chart.datasets.map((set, i) => ({
      label: set.label, data: set.data, borderColor: colours[i % colours.length],
      backgroundColor: chart.stacked ? colours[i % colours.length] + "99" : colours[i % colours.length],
      fill: !!chart.stacked, tension: 0.25, pointRadius: data.labels.length > 45 ? 0 : 2, spanGaps: true,
    }));
    new Chart(canvas, {
      type: "line",
      data: { labels: data.labels, datasets },
      options: {
        responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { stacked: !!chart.stacked, beginAtZero: true,
               ticks: chart.unit ? { callback: (v) => v + chart.unit } : { precision: 0 } },
        },
      },
    });
  }
})();
