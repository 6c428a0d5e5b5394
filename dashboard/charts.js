// Charts drawn by uPlot (the chart library: see the README), two bar series each, up and down.
// The library is loaded by the first chart, so no other page waits for it.

let library = null;
function uPlotLoaded() {
  library ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/dashboard/uPlot.iife.min.js";
    script.addEventListener("load", () => resolve(window.uPlot));
    script.addEventListener("error", () => reject(new Error("The chart library could not be loaded.")));
    document.head.append(script);
  });
  return library;
}

const UP = "#2f6fde";
const DOWN = "#d0532e";

function series(label, stroke, align) {
  // (paths: uPlot's bars, made when the library is there)
  return { label, stroke, fill: `${stroke}cc`, width: 0, align, points: { show: false } };
}

// Counts are whole: the y axis never ticks at 0.25.
const WHOLE = [1, 2, 5].flatMap((m) => Array.from({ length: 16 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);
const Y_AXIS = { incrs: WHOLE, values: (u, splits) => splits.map((v) => v.toLocaleString()) };

function sized(el) {
  return { width: Math.max(260, el.clientWidth || 300), height: 190 };
}

// A chart that follows its box's width; `data` is [x, up, down].
async function mount(el, options, data) {
  const uPlot = await uPlotLoaded();
  for (const s of options.series.slice(1)) s.paths = uPlot.paths.bars({ size: [0.4, 40], align: s.align });
  const chart = new uPlot({ ...options, ...sized(el) }, data, el);
  const observer = new ResizeObserver(() => chart.setSize(sized(el)));
  observer.observe(el);
  return {
    update: (next) => chart.setData(next),
    destroy: () => {
      observer.disconnect();
      chart.destroy();
    },
  };
}

// Buckets over time: x in seconds since the epoch.
export async function timeChart(el, data) {
  return mount(
    el,
    {
      legend: { show: true },
      scales: {
        // Half a bucket of room each side: the first and last buckets' bars stay inside.
        x: {
          time: true,
          range: (u, min, max) => {
            const n = u.data[0].length;
            const half = n > 1 ? (max - min) / (n - 1) / 2 : 1800;
            return [min - half, max + half];
          },
        },
        y: { range: (u, min, max) => [0, Math.max(1, max)] },
      },
      axes: [{}, Y_AXIS],
      series: [{}, series("up", UP, -1), series("down", DOWN, 1)],
    },
    data,
  );
}

// Named buckets (hours, weekdays, quarters): x is the bucket's index in `labels`.
export async function categoryChart(el, labels, data) {
  return mount(
    el,
    {
      legend: { show: true },
      scales: {
        x: { time: false, range: () => [-0.5, labels.length - 0.5] },
        y: { range: (u, min, max) => [0, Math.max(1, max)] },
      },
      axes: [
        {
          incrs: [1, 2, 3, 4, 6, 12],
          values: (u, splits) => splits.map((i) => labels[i] ?? ""),
        },
        Y_AXIS,
      ],
      series: [{ label: "bucket", value: (u, i) => labels[i] ?? "" }, series("up", UP, -1), series("down", DOWN, 1)],
    },
    data,
  );
}
