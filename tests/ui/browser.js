#!/usr/bin/env node
// A headless Chromium (Debian's /usr/bin/chromium, never a downloaded one)
// driven by playwright-core, taking one JSON command a line on stdin and
// answering one JSON line each on stdout: the Python tests
// (test_dashboard.py) drive it, so that real server and proxy processes stay
// in the Python harness. Commands: {"id", "op", ...}; answers {"id", "ok":
// true, "value"} or {"id", "ok": false, "error"}. Ops:
//   open {page, url, width, height}   a new page (own context: own session storage)
//   goto {page, url}                  load a URL in it
//   eval {page, expr}                 evaluate an expression, answer its value
//   wait {page, expr, ms}            until the expression is truthy (its value)
//   click {page, selector} / fill {page, selector, value}
//   viewport {page, width, height}
//   screenshot {page, path}           a full-page PNG
//   errors {page}                     page errors and console errors so far
//   close {page} / quit
// The browser is closed when stdin ends or on SIGTERM, also on a failure.
"use strict";
const readline = require("readline");
const {chromium} = require("playwright-core");

const EXE = process.env.RP_CHROMIUM || "/usr/bin/chromium";
let browser = null;
const pages = {};

async function quit(code) {
	try {
		if (browser) await browser.close();
	} catch (e) { /* already gone */ }
	process.exit(code);
}
process.on("SIGTERM", () => quit(1));
process.on("SIGINT", () => quit(1));

function page(name) {
	const p = pages[name];
	if (!p) throw new Error("no page " + name);
	return p;
}

async function run(cmd) {
	switch (cmd.op) {
	case "open": {
		const ctx = await browser.newContext({viewport: {width: cmd.width || 1280,
								height: cmd.height || 800}});
		const p = await ctx.newPage();
		p.rpErrors = [];
		p.on("pageerror", (e) => p.rpErrors.push("pageerror: " + e.message));
		p.on("console", (m) => {
			if (m.type() === "error") p.rpErrors.push("console: " + m.text());
		});
		pages[cmd.page] = p;
		await p.goto(cmd.url, {waitUntil: "load"});
		return p.url();
	}
	case "goto":
		await page(cmd.page).goto(cmd.url, {waitUntil: "load"});
		return page(cmd.page).url();
	case "eval":
		return await page(cmd.page).evaluate(cmd.expr);
	case "wait": {
		/* polled from here: waitForFunction's in-page poller evaluates a
		 * string, which the page's CSP (no unsafe-eval) rightly refuses */
		const p = page(cmd.page), end = Date.now() + (cmd.ms || 10000);
		for (;;) {
			const v = await p.evaluate(cmd.expr);
			if (v) return v;
			if (Date.now() > end) throw new Error(`timeout after ${cmd.ms} ms`);
			await new Promise((r) => setTimeout(r, 50));
		}
	}
	case "click":
		await page(cmd.page).click(cmd.selector, {timeout: cmd.ms || 10000});
		return true;
	case "fill":
		await page(cmd.page).fill(cmd.selector, cmd.value, {timeout: cmd.ms || 10000});
		return true;
	case "viewport":
		await page(cmd.page).setViewportSize({width: cmd.width, height: cmd.height});
		return true;
	case "screenshot":
		await page(cmd.page).screenshot({path: cmd.path, fullPage: true});
		return cmd.path;
	case "errors":
		return page(cmd.page).rpErrors;
	case "close":
		await page(cmd.page).context().close();
		delete pages[cmd.page];
		return true;
	case "quit":
		await quit(0);
		return true;
	default:
		throw new Error("unknown op " + cmd.op);
	}
}

async function main() {
	browser = await chromium.launch({executablePath: EXE, headless: true,
					 args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]});
	process.stdout.write(JSON.stringify({id: 0, ok: true, value: browser.version()}) + "\n");
	const rl = readline.createInterface({input: process.stdin});
	// one command at a time, in order
	let chain = Promise.resolve();
	rl.on("line", (line) => {
		chain = chain.then(async () => {
			let cmd;
			try {
				cmd = JSON.parse(line);
				const value = await run(cmd);
				process.stdout.write(JSON.stringify({id: cmd.id, ok: true,
					value: value === undefined ? null : value}) + "\n");
			} catch (e) {
				process.stdout.write(JSON.stringify({id: cmd ? cmd.id : -1, ok: false,
					error: String(e && e.message || e)}) + "\n");
			}
		});
	});
	rl.on("close", () => chain.then(() => quit(0)));
}

main().catch((e) => {
	process.stdout.write(JSON.stringify({id: 0, ok: false, error: String(e.message || e)}) + "\n");
	quit(1);
});
