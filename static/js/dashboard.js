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

  draw("chart-registrations", {
    type: "bar",
    data: {
      labels: data.weeks,
      datasets: ["submitted", "approved", "won"].map(function (key, index) {
        return { label: data.registrations.labels[key], data: data.registrations[key], backgroundColor: palette[index] };
      }),
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
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

  // What drives satisfaction: per driver, largest effect first, its 95 % interval as a
  // floating bar and the estimate as a thin mark; green or red when the interval leaves out 0
  // (the direction is clear), grey when it crosses 0.
  if (data.drivers) {
    const drivers = data.drivers;
    const tone = function (index, strong) {
      if (!drivers.clear[index]) {
        return strong ? "#6c757d" : "rgba(108, 117, 125, 0.35)";
      }
      const up = drivers.effects[index] > 0;
      return strong ? (up ? "#198754" : "#dc3545") : (up ? "rgba(25, 135, 84, 0.35)" : "rgba(220, 53, 69, 0.35)");
    };
    const mark = function (value) {
      return [value - 0.004, value + 0.004];
    };
    draw("chart-drivers", {
      type: "bar",
      data: {
        labels: drivers.labels,
        datasets: [
          {
            label: drivers.interval_label,
            data: drivers.intervals,
            backgroundColor: drivers.intervals.map(function (_, index) { return tone(index, false); }),
            grouped: false,
            barPercentage: 0.7,
          },
          {
            label: drivers.effect_label,
            data: drivers.effects.map(mark),
            backgroundColor: drivers.effects.map(function (_, index) { return tone(index, true); }),
            grouped: false,
            barPercentage: 0.95,
          },
        ],
      },
      options: {
        indexAxis: "y",
        scales: { x: { title: { display: true, text: drivers.effect_label } } },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (context) {
                const index = context.dataIndex;
                const interval = drivers.intervals[index];
                return drivers.effect_label + ": " + drivers.effects[index].toFixed(2) + " (" + interval[0].toFixed(2) + " … " + interval[1].toFixed(2) + ")";
              },
            },
          },
        },
      },
    });
  }

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
