// Draws the dashboard's charts from the JSON the page embeds (json_script); no inline code.
(function () {
  "use strict";
  const source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const palette = ["#0d6efd", "#198754", "#fd7e14", "#6f42c1", "#d63384", "#20c997", "#6c757d", "#dc3545"];
  const charts = [];
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function percentTick(value) {
    return value + " %";
  }

  function percentLabel(context) {
    const value = context.parsed.y;
    return context.dataset.label + ": " + (value === null ? "—" : value.toFixed(1) + " %");
  }

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) {
      charts.push(new Chart(canvas, config));
    }
  }

  function lineDataset(label, values, index) {
    return {
      label: label,
      data: values,
      borderColor: palette[index % palette.length],
      backgroundColor: palette[index % palette.length],
      // Straight segments between the weekly figures and a gap where a week has no snapshot:
      // a smoothed curve or a bridged gap would show values nobody measured.
      spanGaps: false,
      tension: 0,
      pointRadius: 2,
    };
  }

  draw("chart-trend", {
    type: "line",
    data: {
      labels: data.weeks,
      datasets: [
        lineDataset(data.labels.coverage, data.coverage, 0),
        lineDataset(data.labels.penetration, data.penetration, 1),
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: { callback: percentTick } } },
      plugins: { tooltip: { callbacks: { label: percentLabel } } },
    },
  });

  if (data.revenue) {
    const revenue = data.revenue;
    draw("chart-mrr", {
      type: "line",
      data: {
        labels: revenue.weeks,
        datasets: [
          Object.assign(lineDataset(revenue.labels.mrr, revenue.mrr, 0), { yAxisID: "y" }),
          Object.assign(lineDataset(revenue.labels.subscribers, revenue.subscribers, 1), { yAxisID: "y1" }),
          Object.assign(lineDataset(revenue.labels.arpa, revenue.arpa, 2), { yAxisID: "y2" }),
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          y: { beginAtZero: true, position: "left" },
          y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } },
          y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } },
        },
      },
    });
    draw("chart-forecast", {
      type: "bar",
      data: {
        labels: revenue.forecast.labels,
        datasets: [{ label: revenue.forecast.label, data: revenue.forecast.amounts, backgroundColor: palette[0] }],
      },
      options: { scales: { y: { beginAtZero: true } } },
    });
  }

  draw("chart-channels", {
    type: "bar",
    data: {
      labels: data.channels.labels,
      datasets: [
        { label: data.labels.coverage, data: data.channels.coverage, backgroundColor: palette[0] },
        { label: data.labels.penetration, data: data.channels.penetration, backgroundColor: palette[1] },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, ticks: { callback: percentTick } } },
      plugins: { tooltip: { callbacks: { label: percentLabel } } },
    },
  });

  draw("chart-converted", {
    type: "bar",
    data: {
      labels: data.weeks,
      datasets: data.converted.map(function (series, index) {
        return { label: series.label, data: series.data, backgroundColor: palette[index % palette.length] };
      }),
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
    },
  });

  draw("chart-feedback-volume", {
    type: "bar",
    data: {
      labels: data.feedback.weeks,
      datasets: data.feedback.volume.map(function (series, index) {
        return { label: series.label, data: series.data, backgroundColor: palette[index % palette.length] };
      }),
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
    },
  });

  // Satisfaction by category: one bar per category for the latest weeks beside the weeks
  // before, lowest first, on the 1-5 scale.
  draw("chart-feedback-satisfaction", {
    type: "bar",
    data: {
      labels: data.feedback.satisfaction.labels,
      datasets: [
        { label: data.feedback.satisfaction.recent_label, data: data.feedback.satisfaction.recent, backgroundColor: palette[0] },
        { label: data.feedback.satisfaction.previous_label, data: data.feedback.satisfaction.previous, backgroundColor: "#adb5bd" },
      ],
    },
    options: {
      indexAxis: "y",
      scales: { x: { min: 1, max: 5, ticks: { stepSize: 1 } } },
      plugins: {
        tooltip: {
          callbacks: {
            label: function (context) {
              const value = context.parsed.x;
              return context.dataset.label + ": " + (value === null ? "—" : value.toFixed(2));
            },
          },
        },
      },
    },
  });

  document.querySelectorAll("canvas[data-sparkline]").forEach(function (canvas) {
    const key = canvas.getAttribute("data-sparkline");
    const values = data.sparklines[key] || [];
    charts.push(
      new Chart(canvas, {
        type: "line",
        data: {
          labels: data.weeks,
          datasets: [{ label: data.labels[key], data: values, borderColor: palette[0], borderWidth: 1.5, pointRadius: 0, spanGaps: false, tension: 0 }],
        },
        options: {
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { display: false } },
          scales: { x: { display: false }, y: { display: false } },
        },
      })
    );
  });

  // Charts keep their screen size unless told to fit the printed page.
  window.addEventListener("beforeprint", function () {
    charts.forEach(function (chart) {
      chart.resize();
    });
  });
  document.querySelectorAll("[data-action=print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });
  document.documentElement.setAttribute("data-charts-drawn", String(charts.length));
})();
