// Shared helpers for the interop scripts: Node 20 polyfills, a WebSocket,
// connection modes, the deterministic payloads, and the JSON-lines protocol
// the Go test reads on stdout.

// Node 20 lacks these; @moq/lite and @moq/qmux call them.
if (!Promise.withResolvers) {
	Promise.withResolvers = function () {
		let resolve, reject;
		const promise = new Promise((res, rej) => {
			resolve = res;
			reject = rej;
		});
		return { promise, resolve, reject };
	};
}
if (!Set.prototype.difference) {
	Set.prototype.difference = function (other) {
		const out = new Set();
		for (const v of this) if (!other.has(v)) out.add(v);
		return out;
	};
}

import { WebSocket } from "ws";
globalThis.WebSocket ??= WebSocket;

// stdout carries only our JSON events: the packages log with console.*.
const toStderr = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;

const { Connection, Path } = await import("@moq/lite");
export { payload, readTrack, verify, verifyText } from "./payload.mjs";
const { default: QMuxSession } = await import("@moq/qmux");
export { Path };

/** Writes one event for the Go test. */
export function emit(event) {
	process.stdout.write(JSON.stringify(event) + "\n");
}

/** Parses --key value arguments. */
export function args() {
	const out = {};
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
	return out;
}

/**
 * Connects to url. mode "setup" is the client's own default over WebSocket
 * (no application protocol, SETUP negotiates moq-lite-02); "moq-lite-03" and
 * "moq-lite-04" build the qmux session with that protocol and hand it to
 * connect() as a ready transport.
 */
export async function connect(url, mode) {
	const u = new URL(url);
	if (mode === "setup") {
		return await Connection.connect(u, { websocket: { enabled: true } });
	}
	const ws = new URL(u);
	ws.protocol = u.protocol === "https:" ? "wss:" : "ws:";
	const session = new QMuxSession(ws, { protocols: [mode] });
	await session.ready;
	return await Connection.connect(u, { transport: session });
}

/** Lines read from stdin, as an async queue. */
export function stdinLines() {
	let buffer = "";
	const waiting = [];
	const lines = [];
	process.stdin.setEncoding("utf8");
	process.stdin.on("data", (chunk) => {
		buffer += chunk;
		let i;
		while ((i = buffer.indexOf("\n")) >= 0) {
			const line = buffer.slice(0, i);
			buffer = buffer.slice(i + 1);
			const w = waiting.shift();
			if (w) w(line);
			else lines.push(line);
		}
	});
	return () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiting.push(resolve)));
}

/** Ends the process after the event loop drains, or forcibly after a grace. */
export function exit(code = 0) {
	setTimeout(() => process.exit(code), 200).unref();
}
