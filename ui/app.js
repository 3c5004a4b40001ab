/* raftplane dashboard. Reads only the public REST API of the server that
 * served it (same origin: the page's Content-Security-Policy allows nothing
 * else). Each view runs one loop with at most one request in flight; the
 * loop of a view that is not shown stops (its request is aborted). Every
 * value from the API is put in the page as text (textContent), never as
 * markup. */
"use strict";

const TOKEN_KEY = "raftplane-token";
const MESH = ["listeners", "routes", "clusters"];
const state = {view: null, gen: 0, abort: null, admin: false, loginWait: null};

/* ---- small helpers ------------------------------------------------------ */

const $ = (sel, root) => (root || document).querySelector(sel);

function el(tag, props, ...kids) {
	const e = document.createElement(tag);
	for (const k in props || {}) {
		const v = props[k];
		if (v === undefined || v === null) continue;
		if (k === "class") e.className = v;
		else if (k === "text") e.textContent = v;
		else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "scope")
			e.setAttribute(k, v);
		else e[k] = v;
	}
	for (const c of kids) if (c !== null && c !== undefined) e.append(c);
	return e;
}

const sleep = (ms, signal) => new Promise((resolve) => {
	const t = setTimeout(resolve, ms);
	if (signal) signal.addEventListener("abort", () => { clearTimeout(t); resolve(); });
});

function ago(ms) {
	if (!ms) return "never";
	const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
	if (s < 60) return `${s} s ago`;
	if (s < 3600) return `${Math.round(s / 60)} min ago`;
	return new Date(ms).toLocaleString();
}

const pct = (v) => (v === null || v === undefined ? "no data" : (v * 100).toFixed(1) + " %");
const num = (v, d) => (v === null || v === undefined ? "no data" : Number(v).toFixed(d));

function banner(msg) {
	const b = $("#banner");
	b.hidden = !msg;
	b.textContent = msg || "";
}

/* ---- the API ------------------------------------------------------------ */

class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

function token() {
	return sessionStorage.getItem(TOKEN_KEY);
}

/* One request; a 401 asks for a token and tries again once it is given. */
async function api(method, path, body, signal) {
	for (;;) {
		const headers = {};
		const t = token();
		if (t) headers.Authorization = "Bearer " + t;
		if (body !== undefined) headers["Content-Type"] = "application/json";
		const res = await fetch(path, {method, headers, signal, cache: "no-store",
			body: body === undefined ? undefined : JSON.stringify(body)});
		let data = null;
		const text = await res.text();
		try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
		if (res.status === 401) {
			await askToken(t ? "That token was refused." : "");
			continue;
		}
		if (!res.ok) {
			const err = (data && data.error) || {};
			throw new ApiError(res.status, err.code || "http_" + res.status,
					   err.message || res.statusText);
		}
		return data;
	}
}

/* The login prompt; every caller waiting on a token shares one. */
function askToken(msg) {
	if (state.loginWait) return state.loginWait;
	const dlg = $("#login");
	$("#login-error").textContent = msg;
	$("#login-token").value = "";
	state.loginWait = new Promise((resolve) => {
		$("#login-form").onsubmit = () => {
			const v = $("#login-token").value.trim();
			if (!v) return false;
			sessionStorage.setItem(TOKEN_KEY, v);
			state.loginWait = null;
			resolve();
			findRole();
			return true; /* method=dialog closes it */
		};
	});
	if (!dlg.open) dlg.showModal();
	return state.loginWait;
}

/* Admins see the rollback buttons: GET /v1/tokens needs admin (and answers
 * 200 to everyone while the cluster has no tokens). The server checks the
 * role of every request anyway. */
async function findRole() {
	let admin = false, label = "";
	try {
		await api("GET", "/v1/tokens");
		admin = true;
		label = token() ? "role: admin" : "no tokens on this cluster: everyone is admin";
	} catch (e) {
		label = e.status === 403 ? "role: read or write (no rollback)" : "role: unknown";
	}
	state.admin = admin;
	document.body.dataset.admin = admin ? "yes" : "no";
	$("#role").textContent = label;
	$("#logout").hidden = !token();
	for (const b of document.querySelectorAll(".admin-only")) b.hidden = !admin;
}

/* ---- views: switching --------------------------------------------------- */

const views = {cluster: clusterLoop, proxies: proxiesLoop, rollouts: rolloutsLoop,
	       traffic: trafficLoop, config: configLoop};

function show(name) {
	if (!views[name]) name = "cluster";
	if (state.abort) state.abort.abort();
	const ctl = new AbortController();
	state.abort = ctl;
	state.view = name;
	const gen = ++state.gen;
	for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.view !== name;
	for (const a of document.querySelectorAll("nav a")) {
		if (a.dataset.view === name) a.setAttribute("aria-current", "page");
		else a.removeAttribute("aria-current");
	}
	document.body.dataset.view = name;
	const live = () => gen === state.gen && !ctl.signal.aborted;
	/* a loop that fails waits a second and starts again */
	(async () => {
		while (live()) {
			try {
				await views[name](ctl.signal, live);
			} catch (e) {
				if (!live()) return;
				banner(e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}`
					   : "the server does not answer: " + e.message);
				await sleep(1000, ctl.signal);
			}
		}
	})();
}

/* ---- Cluster ------------------------------------------------------------- */

async function clusterLoop(signal, live) {
	while (live()) {
		const t0 = Date.now();
		const d = await api("GET", "/v1/status?scope=cluster", undefined, signal);
		if (!live()) return;
		banner("");
		renderCluster(d);
		/* a poll starts at most 500 ms after the last one started; a hung
		 * member costs its 1 s fan-out timeout: marked within ~1.6 s */
		await sleep(Math.max(0, 500 - (Date.now() - t0)), signal);
	}
}

function renderCluster(d) {
	let maxCommit = 0, leader = null, term = -1;
	for (const m of d.members) {
		const s = m.status;
		if (!s) continue;
		if (s.commit_index > maxCommit) maxCommit = s.commit_index;
		/* the leader: a member that says it leads, in the highest term */
		if (s.state === "leader" && s.term > term) { leader = m; term = s.term; }
	}
	if (!leader) { /* else what the members with the highest term believe */
		for (const m of d.members) {
			const s = m.status;
			if (s && s.leader && s.term > term) {
				term = s.term;
				leader = d.members.find((x) => x.id === s.leader.id) || {id: s.leader.id,
					http: s.leader.http};
			}
		}
	}
	const L = $("#leader");
	L.dataset.leaderId = leader ? String(leader.id) : "";
	L.textContent = leader ? `Leader: member ${leader.id} (${leader.http || "address unknown"}), term ${term}`
		: "Leader: none known (election under way or no quorum)";
	const tb = $("#members tbody");
	tb.textContent = "";
	for (const m of d.members) {
		const s = m.status;
		const isLeader = leader && m.id === leader.id;
		const tr = el("tr", {"data-member-id": String(m.id),
				     "data-reachable": m.reachable ? "yes" : "no",
				     class: (m.reachable ? "" : "down") + (isLeader && m.reachable ? " leader" : "")},
			el("th", {scope: "row", text: String(m.id)}),
			el("td", {text: m.http || "(unknown)"}),
			el("td", {text: m.role}),
			el("td", {class: "answer", text: m.reachable ? "✓ yes" : "✗ NOT ANSWERING"}),
			el("td", {class: "state", text: s ? s.state : "unknown"}),
			el("td", {text: s ? (s.leader ? String(s.leader.id) : "none") : "unknown"}),
			el("td", {text: s ? String(s.term) : "—"}),
			el("td", {text: s ? String(s.commit_index) : "—"}),
			el("td", {text: s ? String(s.applied_index) : "—"}),
			el("td", {class: "lag", text: s ? String(Math.max(0, maxCommit - s.applied_index)) : "—"}),
			el("td", {text: s ? String(s.revision) : "—"}));
		tb.append(tr);
	}
	$("#cluster-updated").textContent = new Date().toLocaleTimeString() +
		` by member ${d.answered_by}`;
}

/* ---- Proxies ------------------------------------------------------------ */

const proxySort = {key: "node_id", dir: 1};
let proxyRows = [];

function proxyStatus(p) {
	if (p.nack) return "NACK";
	if (p.acked_version === null || p.acked_version === undefined) return "pending";
	return p.acked_version >= p.current_version ? "ACK" : "behind";
}

/* Per node id: requests/s and error rate summed over its clusters. */
function perProxyTraffic(tl) {
	const by = {};
	for (const c of (tl && tl.clusters) || []) {
		for (const p of c.proxies || []) {
			const b = by[p.node_id] || (by[p.node_id] = {rate: 0, errors: 0, responses: 0});
			b.rate += p.rate || 0;
			b.errors += p.errors || 0;
			const r = p.responses || {};
			for (const k in r) b.responses += r[k];
		}
	}
	return by;
}

async function proxiesLoop(signal, live) {
	while (live()) {
		const t0 = Date.now();
		const d = await api("GET", "/v1/proxies", undefined, signal);
		let tl = null;
		try {
			tl = await api("GET", "/v1/telemetry/clusters?window=1m", undefined, signal);
		} catch (e) {
			if (!live()) return;
		}
		if (!live()) return;
		banner("");
		const traffic = perProxyTraffic(tl);
		proxyRows = d.proxies.map((p) => {
			const t = traffic[p.node_id];
			return Object.assign({}, p, {status: proxyStatus(p),
				version: p.acked_version === null ? -1 : p.acked_version,
				rate: t ? t.rate : null,
				error_rate: t && t.responses ? t.errors / t.responses : null});
		});
		renderProxies();
		$("#proxies-unreachable").textContent = d.unreachable.length
			? "Servers not answering (their proxies may be missing): " + d.unreachable.join(", ") : "";
		await sleep(Math.max(0, 2000 - (Date.now() - t0)), signal);
	}
}

function renderProxies() {
	const f = $("#proxy-filter").value.trim().toLowerCase();
	const rows = proxyRows.filter((p) => !f || [p.node_id, p.server, p.status,
		p.nack ? p.nack.error : ""].some((s) => String(s).toLowerCase().includes(f)));
	const k = proxySort.key;
	rows.sort((a, b) => {
		const x = a[k] === null ? -Infinity : a[k], y = b[k] === null ? -Infinity : b[k];
		return (x < y ? -1 : x > y ? 1 : 0) * proxySort.dir ||
			(a.node_id < b.node_id ? -1 : 1);
	});
	for (const th of document.querySelectorAll("#proxies th"))
		th.setAttribute("aria-sort", th.dataset.key === k ? (proxySort.dir > 0 ? "ascending"
			: "descending") : "none");
	const tb = $("#proxies tbody");
	tb.textContent = "";
	for (const p of rows) {
		const st = el("td", {class: "status"});
		if (p.status === "NACK") {
			st.append(el("strong", {text: `✗ NACK of version ${p.nack.version}`}), ": ",
				  el("span", {class: "nack-error", text: p.nack.error}));
		} else {
			st.textContent = {ACK: "✓ ACK", pending: "… pending (no ACK yet)",
					  behind: `… behind (current ${p.current_version})`}[p.status];
		}
		tb.append(el("tr", {"data-node-id": p.node_id, "data-status": p.status,
				    class: "st-" + p.status.toLowerCase()},
			el("th", {scope: "row", text: p.node_id}),
			el("td", {text: p.server + (p.connected ? "" : " (not connected)")}),
			el("td", {text: p.acked_version === null ? "none" : String(p.acked_version)}),
			st,
			el("td", {text: ago(p.last_seen)}),
			el("td", {class: "rate", text: num(p.rate, 2)}),
			el("td", {text: pct(p.error_rate)})));
	}
	$("#proxy-count").textContent = `${rows.length} of ${proxyRows.length} shown`;
}

/* ---- Rollouts ----------------------------------------------------------- */

/* The newest revision that changed the mesh, with its history record. */
async function latestMeshChange(signal) {
	const h = await api("GET", "/v1/history?limit=50", undefined, signal);
	for (const r of h.history)
		if (r.changes.some((c) => MESH.includes(c.kind))) return {rev: r.revision, rec: r, at: h.revision};
	return {rev: null, rec: null, at: h.revision};
}

function describe(rec) {
	if (!rec) return "";
	const ch = rec.changes.filter((c) => MESH.includes(c.kind))
		.map((c) => `${c.type} ${c.kind.replace(/s$/, "")} ${c.name}`);
	return `Revision ${rec.revision} by ${rec.actor}, ${new Date(rec.time).toLocaleString()}: ${ch.join(", ")}`;
}

async function rolloutsLoop(signal, live) {
	let {rev, rec, at} = await latestMeshChange(signal);
	while (live()) {
		if (rev) {
			$("#rollout-change").textContent = describe(rec);
			/* answers within 1 s, at once when nothing is pending */
			const r = await api("GET", `/v1/rollouts/${rev}?wait=1s`, undefined, signal);
			if (!live()) return;
			banner("");
			renderRollout(r);
			if (r.pending > 0) continue;
		}
		/* all settled: wait for the next change of the mesh */
		const w = await api("GET", `/v1/watch?after=${at}&wait=10s&kinds=listeners,routes,clusters`,
				    undefined, signal);
		if (!live()) return;
		at = w.revision;
		if (w.changes.length) ({rev, rec, at} = await latestMeshChange(signal));
		else if (rev) {
			/* refresh the numbers (and the after-window) every 10 s */
			const r = await api("GET", `/v1/rollouts/${rev}`, undefined, signal);
			if (live()) renderRollout(r);
		}
	}
}

function renderRollout(r) {
	const bar = $("#rollout-bar");
	bar.textContent = "";
	const n = r.proxies || 0;
	for (const [k, label] of [["acked", "ACKed"], ["nacked", "NACKed"], ["pending", "pending"]]) {
		if (!r[k]) continue;
		const seg = el("span", {class: "seg seg-" + k, text: `${r[k]} ${label}`});
		seg.style.width = `${(100 * r[k]) / n}%`; /* CSSOM: allowed by the CSP */
		bar.append(seg);
	}
	let summary;
	if (n === 0) summary = "no proxy known";
	else if (r.acked === n) summary = `all ACKed (${n} of ${n})`;
	else summary = `${r.acked} of ${n} ACKed, ${r.nacked} NACKed, ${r.pending} pending`;
	bar.setAttribute("aria-label", summary);
	const t = $("#rollout-text");
	t.textContent = `Revision ${r.revision}: ${summary}`;
	t.dataset.acked = r.acked;
	t.dataset.nacked = r.nacked;
	t.dataset.pending = r.pending;
	t.dataset.revision = r.revision;
	const ul = $("#rollout-nacks");
	ul.textContent = "";
	for (const x of r.nacks) ul.append(el("li", {"data-node-id": x.node_id},
		el("strong", {text: x.node_id}), ` (version ${x.version}): `, el("span", {class: "nack-error", text: x.error})));
	if (!r.nacks.length) ul.append(el("li", {text: "none"}));
	$("#rollout-pending").textContent = r.pending_nodes.length
		? "Pending: " + r.pending_nodes.join(", ") : "";
	const dl = $("#rollout-telemetry");
	dl.textContent = "";
	const tm = r.telemetry;
	if (tm) {
		const w = Math.round(tm.window_ms / 1000);
		const says = (x) => `error rate ${pct(x.error_rate)} of ${x.requests} requests, p99 ` +
			(x.p99_ms === null || x.p99_ms === undefined ? "no data" : num(x.p99_ms, 2) + " ms");
		dl.append(el("dt", {text: `${w} s before the ACK`}), el("dd", {class: "before", text: says(tm.before)}),
			  el("dt", {text: `After the ACK (up to ${w} s)`}), el("dd", {class: "after", text: says(tm.after)}),
			  el("dt", {text: "Proxies with telemetry"}), el("dd", {text: String(tm.proxies)}));
	}
}

/* ---- Traffic ------------------------------------------------------------ */

const SPAN = 15 * 60 * 1000;
const series = {clusters: {}, routes: {}}; /* name -> [{t, rate, err, p99}] */

function record(kind, items, now) {
	const seen = new Set();
	for (const it of items) {
		const s = series[kind][it.name] || (series[kind][it.name] = []);
		s.push({t: now, rate: it.rate, err: it.error_rate,
			p99: it.latency_ms ? it.latency_ms.p99 : null});
		seen.add(it.name);
	}
	for (const name in series[kind]) {
		const s = series[kind][name];
		while (s.length && s[0].t < now - SPAN) s.shift();
		/* not in the answer: nothing reported in the window */
		if (!seen.has(name)) s.push({t: now, rate: 0, err: null, p99: null});
	}
}

function renderSeries(kind, box) {
	box.textContent = "";
	for (const name of Object.keys(series[kind]).sort()) {
		const s = series[kind][name];
		const card = el("article", {class: "card", "data-name": name, "data-kind": kind},
			el("h4", {text: name}));
		for (const [k, title, unit] of [["rate", "requests/s", ""], ["err", "error rate", "%"],
						["p99", "p99", "ms"]]) {
			const c = el("div", {class: "metric-" + k});
			rpChart.line(c, s.map((p) => ({t: p.t, v: p[k]})), {title, unit, span: SPAN});
			card.append(c);
		}
		box.append(card);
	}
	if (!box.children.length) box.append(el("p", {text: "no traffic reported yet"}));
}

async function trafficLoop(signal, live) {
	while (live()) {
		const t0 = Date.now();
		const c = await api("GET", "/v1/telemetry/clusters?window=10s", undefined, signal);
		const r = await api("GET", "/v1/telemetry/routes?window=10s", undefined, signal);
		const cfg = await api("GET", "/v1/clusters", undefined, signal);
		const health = [];
		for (const it of cfg.items) {
			try {
				health.push(await api("GET", `/v1/clusters/${encodeURIComponent(it.name)}/health`,
						      undefined, signal));
			} catch (e) {
				if (!live()) return;
			}
		}
		if (!live()) return;
		banner("");
		const now = Date.now();
		record("clusters", c.clusters, now);
		record("routes", r.routes, now);
		renderSeries("clusters", $("#traffic-clusters"));
		renderSeries("routes", $("#traffic-routes"));
		renderHealth(health);
		await sleep(Math.max(0, 5000 - (Date.now() - t0)), signal);
	}
}

function renderHealth(list) {
	const box = $("#traffic-health");
	box.textContent = "";
	for (const h of list) {
		const tb = el("tbody");
		for (const e of h.endpoints) {
			const bad = e.unhealthy + e.ejected;
			tb.append(el("tr", {class: bad ? "st-nack" : "", "data-address": e.address},
				el("th", {scope: "row", text: e.address}),
				el("td", {text: `${bad ? "✗" : "✓"} ${e.healthy} healthy, ${e.unhealthy} unhealthy, ${e.ejected} ejected`}),
				el("td", {text: e.proxies.filter((p) => p.state !== "healthy")
					.map((p) => `${p.node_id}: ${p.state}${p.reason ? " (" + p.reason + ")" : ""}`)
					.join("; ") || "—"})));
		}
		box.append(el("div", {class: "scroll"}, el("table", {"data-cluster": h.cluster},
			el("caption", {text: `Cluster ${h.cluster}: seen by ${h.proxies} proxies`}),
			el("thead", {}, el("tr", {}, el("th", {scope: "col", text: "Endpoint"}),
				el("th", {scope: "col", text: "Health"}), el("th", {scope: "col", text: "Not healthy on"}))),
			tb)));
	}
	if (!list.length) box.append(el("p", {text: "no clusters"}));
}

/* ---- Config and history ------------------------------------------------- */

async function configLoop(signal, live) {
	let at = null;
	while (live()) {
		const lists = {};
		for (const k of MESH) lists[k] = await api("GET", "/v1/" + k, undefined, signal);
		const h = await api("GET", "/v1/history?limit=50", undefined, signal);
		if (!live()) return;
		banner("");
		renderConfig(lists, h);
		at = Math.max(...MESH.map((k) => lists[k].revision), h.revision);
		/* wait for the next change (of anything the history shows) */
		for (;;) {
			const w = await api("GET", `/v1/watch?after=${at}&wait=30s` +
					    "&kinds=listeners,routes,clusters,members", undefined, signal);
			if (!live()) return;
			at = w.revision;
			if (w.changes.length) break;
		}
	}
}

function renderConfig(lists, h) {
	$("#config-revision").textContent = String(h.revision);
	for (const k of MESH) {
		const ul = $("#cfg-" + k);
		ul.textContent = "";
		for (const it of lists[k].items) {
			const {name, version, ...rest} = it;
			ul.append(el("li", {"data-name": name}, el("details", {},
				el("summary", {text: `${name} (version ${version})${summaryOf(k, it)}`}),
				el("pre", {text: JSON.stringify(rest, null, 2)}))));
		}
		if (!lists[k].items.length) ul.append(el("li", {text: "none"}));
	}
	const tb = $("#history tbody");
	tb.textContent = "";
	for (const r of h.history) {
		const mesh = r.changes.some((c) => MESH.includes(c.kind));
		const acts = el("td", {});
		if (mesh) {
			acts.append(el("button", {type: "button", class: "diff-btn", text: "Diff",
				onclick: () => showDiff(r)}));
			const b = el("button", {type: "button", class: "rollback-btn admin-only",
				text: "Roll back to here", hidden: !state.admin,
				"aria-label": `Roll back the mesh to revision ${r.revision}`,
				onclick: () => rollback(r.revision)});
			acts.append(" ", b);
		}
		tb.append(el("tr", {"data-revision": String(r.revision)},
			el("th", {scope: "row", text: String(r.revision)}),
			el("td", {text: new Date(r.time).toLocaleString()}),
			el("td", {text: r.actor + (r.address ? ` from ${r.address}` : "")}),
			el("td", {text: r.changes.map((c) => `${c.type} ${c.kind}/${c.name}`).join(", ")}),
			acts));
	}
}

function summaryOf(kind, it) {
	if (kind === "routes") return `: ${it.listener} ${it.match ? JSON.stringify(it.match) : ""} → ${it.cluster || "(no cluster)"}`;
	if (kind === "listeners") return `: ${it.address}:${it.port}`;
	if (kind === "clusters") return `: ${(it.endpoints || []).map((e) => e.address + ":" + e.port).join(", ")}`;
	return "";
}

/* An item at a revision, or null where it did not exist. */
async function itemAt(kind, name, rev) {
	if (rev < 1) return null;
	try {
		const it = await api("GET", `/v1/${kind}/${encodeURIComponent(name)}?revision=${rev}`);
		delete it.version;
		return it;
	} catch (e) {
		if (e.status === 404) return null;
		throw e;
	}
}

/* A line diff (longest common subsequence): [[' '|'-'|'+', line]]. */
function diffLines(a, b) {
	const n = a.length, m = b.length;
	const L = Array.from({length: n + 1}, () => new Array(m + 1).fill(0));
	for (let i = n - 1; i >= 0; i--)
		for (let j = m - 1; j >= 0; j--)
			L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
	const out = [];
	let i = 0, j = 0;
	while (i < n || j < m) {
		if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
		else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) out.push(["-", a[i++]]);
		else out.push(["+", b[j++]]); /* removed lines first, as diff -u */
	}
	return out;
}

async function showDiff(rec) {
	const box = $("#diff");
	box.textContent = "";
	box.append(el("h3", {text: `Changes of revision ${rec.revision}`}));
	for (const c of rec.changes.filter((x) => MESH.includes(x.kind))) {
		let before, after;
		try {
			before = await itemAt(c.kind, c.name, rec.revision - 1);
			after = await itemAt(c.kind, c.name, rec.revision);
		} catch (e) {
			box.append(el("p", {text: `${c.kind}/${c.name}: ${e.message}`}));
			continue;
		}
		const lines = (x) => (x === null ? [] : JSON.stringify(x, null, 2).split("\n"));
		const pre = el("pre", {class: "diff", "data-item": `${c.kind}/${c.name}`});
		for (const [op, ln] of diffLines(lines(before), lines(after)))
			pre.append(el("span", {class: op === "+" ? "add" : op === "-" ? "del" : "same",
					       text: `${op} ${ln}\n`}));
		box.append(el("h4", {text: `${c.type} ${c.kind}/${c.name}` +
			(before === null ? " (new)" : after === null ? " (deleted)" : "")}), pre);
	}
	box.scrollIntoView({block: "nearest"});
}

function confirmDialog(text) {
	const dlg = $("#confirm");
	$("#confirm-text").textContent = text;
	return new Promise((resolve) => {
		dlg.onclose = () => resolve(dlg.returnValue === "ok");
		dlg.returnValue = "";
		dlg.showModal();
		$("#confirm-cancel").focus();
	});
}

async function rollback(rev) {
	const out = $("#rollback-result");
	if (!await confirmDialog(`Put every listener, route and cluster back as it was at revision ${rev}? ` +
				 "This is a new change that every proxy gets."))
		return;
	out.textContent = `Rolling back to revision ${rev}…`;
	try {
		const r = await api("POST", "/v1/rollback", {revision: rev});
		out.textContent = r.unchanged ? `Nothing to do: the mesh already equals revision ${rev}.`
			: `Rolled back to revision ${rev} as revision ${r.revision}.`;
		out.dataset.revision = String(r.revision);
	} catch (e) {
		out.textContent = `Rollback refused: ${e.status} ${e.code}: ${e.message}`;
	}
}

/* ---- start -------------------------------------------------------------- */

document.addEventListener("DOMContentLoaded", () => {
	for (const th of document.querySelectorAll("#proxies th")) {
		th.querySelector("button").addEventListener("click", () => {
			proxySort.dir = proxySort.key === th.dataset.key ? -proxySort.dir : 1;
			proxySort.key = th.dataset.key;
			renderProxies();
		});
	}
	$("#proxy-filter").addEventListener("input", renderProxies);
	$("#logout").addEventListener("click", () => {
		sessionStorage.removeItem(TOKEN_KEY);
		location.reload();
	});
	window.addEventListener("hashchange", () => show(location.hash.slice(1)));
	findRole();
	show(location.hash.slice(1));
});
