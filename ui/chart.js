/* raftplane dashboard: a small line chart helper (SVG, no library).
 * rpChart.line(el, points, opts) replaces el's content with a chart of
 * points [{t: ms, v: number|null}] over opts.span ms ending now: a title,
 * the last value as text (so the chart is never the only carrier of the
 * number), the scale's maximum, and an aria-label summing it up. */
"use strict";
(function () {
	const NS = "http://www.w3.org/2000/svg";
	const W = 240, H = 60, PAD = 2;

	function svg(tag, attrs) {
		const e = document.createElementNS(NS, tag);
		for (const k in attrs) e.setAttribute(k, attrs[k]);
		return e;
	}

	function fmt(v, unit) {
		if (v === null || v === undefined || Number.isNaN(v)) return "no data";
		let s;
		if (unit === "%") s = (v * 100).toFixed(v < 0.1 ? 1 : 0) + " %";
		else if (Math.abs(v) >= 100) s = v.toFixed(0);
		else if (Math.abs(v) >= 10) s = v.toFixed(1);
		else s = v.toFixed(2);
		return unit && unit !== "%" ? s + " " + unit : s;
	}

	function line(el, points, opts) {
		const span = opts.span || 15 * 60 * 1000;
		const now = opts.now || Date.now();
		const vals = points.filter((p) => p.v !== null && p.v !== undefined && !Number.isNaN(p.v));
		let max = opts.max || 0;
		for (const p of vals) if (p.v > max) max = p.v;
		if (max <= 0) max = 1;
		/* the newest sample, even when it has no value: never a stale one */
		const lp = points.length ? points[points.length - 1].v : null;
		const last = lp === undefined || Number.isNaN(lp) ? null : lp;
		el.textContent = "";
		el.classList.add("chart");
		const head = document.createElement("div");
		head.className = "chart-head";
		const title = document.createElement("span");
		title.className = "chart-title";
		title.textContent = opts.title;
		const value = document.createElement("span");
		value.className = "chart-value";
		value.textContent = fmt(last, opts.unit);
		head.append(title, " ", value);
		const box = svg("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", height: H,
					preserveAspectRatio: "none", role: "img",
					"aria-label": `${opts.title}: last ${fmt(last, opts.unit)}, ` +
						`highest ${fmt(vals.length ? max : null, opts.unit)}, ` +
						`${vals.length} samples`});
		box.append(svg("rect", {x: 0, y: 0, width: W, height: H, class: "chart-bg"}));
		const x = (t) => PAD + ((t - (now - span)) / span) * (W - 2 * PAD);
		const y = (v) => H - PAD - (v / max) * (H - 2 * PAD);
		let d = "", pen = false;
		for (const p of points) {
			if (p.t < now - span) continue;
			if (p.v === null || p.v === undefined || Number.isNaN(p.v)) {
				pen = false; /* a gap, not a zero */
				continue;
			}
			d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`;
			pen = true;
		}
		if (d) box.append(svg("path", {d, class: "chart-line"}));
		for (const p of vals.slice(-1))
			box.append(svg("circle", {cx: x(p.t), cy: y(p.v), r: 2.5, class: "chart-dot"}));
		const scale = document.createElement("div");
		scale.className = "chart-scale";
		scale.textContent = `max ${fmt(vals.length ? max : null, opts.unit)} · ` +
			`${Math.round(span / 60000)} min`;
		el.append(head, box, scale);
		el.dataset.last = last === null ? "" : String(last);
		el.dataset.at = points.length ? String(points[points.length - 1].t) : "";
	}

	window.rpChart = {line, fmt};
})();
