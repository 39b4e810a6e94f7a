// Chart helpers shared by the dashboard and the backtest reports (uPlot).
const AXIS = { stroke: "#8a94a3", grid: { stroke: "#262c35", width: 1 }, ticks: { stroke: "#262c35", width: 1 } };
const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 2, points: { show: false }, spanGaps: false }, extra || {});
const dashed = (label, stroke) => line(label, stroke, { dash: [6, 4], width: 1.5, paths: uPlot.paths.stepped({ align: 1 }) });

// Fills as triangles on a price chart: up for a buy, down for a sell. Returns how many were
// drawn (the browser tests read it).
function drawTriangles(u, fills) {
  const ctx = u.ctx, [x0, x1] = [u.scales.x.min, u.scales.x.max];
  let n = 0;
  ctx.save();
  for (const f of fills) {
    if (f.t < x0 || f.t > x1) continue;
    const x = u.valToPos(f.t, "x", true), y = u.valToPos(f.price, "y", true), r = 7 * devicePixelRatio;
    const up = f.side === "buy";
    ctx.beginPath();
    ctx.moveTo(x, up ? y - r : y + r);
    ctx.lineTo(x - r, up ? y + r : y - r);
    ctx.lineTo(x + r, up ? y + r : y - r);
    ctx.closePath();
    ctx.fillStyle = up ? "#3fb68b" : "#ff5b5b";
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1;
    ctx.fill();
    ctx.stroke();
    n++;
  }
  ctx.restore();
  return n;
}
