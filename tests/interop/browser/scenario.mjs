// Runs in headless Chromium: connects to the relay over WebTransport only
// (the http:// URL makes @moq/lite fetch /certificate.sha256 and trust that
// hash), subscribes to a Go-published track and publishes one for a Go
// subscriber. Events go to the Go test as JSON POSTs to /event; /wait?for=NAME
// blocks until the test releases NAME.
//   /browser/index.html?relay=URL&consume=PATH&publish=PATH&groups=N&frames=F
import { Broadcast, Connection, Path } from "@moq/lite";
import { payload, readTrack } from "/payload.mjs";

const q = new URLSearchParams(location.search);
const groups = Number(q.get("groups"));
const frames = Number(q.get("frames"));

async function emit(event) {
	await fetch("/event", { method: "POST", body: JSON.stringify(event) });
}

// The package logs with console.*; the test prints these when it fails.
for (const level of ["log", "info", "debug", "warn", "error"]) {
	const original = console[level].bind(console);
	console[level] = (...args) => {
		original(...args);
		fetch("/log", { method: "POST", body: `${level}: ${args.map(String).join(" ")}` }).catch(() => {});
	};
}

async function subscribe(conn) {
	const result = await readTrack(conn.consume(Path.from(q.get("consume"))).subscribe("t0", 0), "t0", {
		groups,
		frames,
		onFirst: (group) => emit({ event: "first", group }),
	});
	await emit({ event: "result", ...result });
}

function writeGroup(track, g) {
	const group = track.appendGroup();
	if (group.sequence !== g) throw new Error(`group ${group.sequence}, want ${g}`);
	for (let f = 0; f < frames; f++) group.writeFrame(payload(track.name, g, f));
	group.close();
}

async function publish(conn) {
	const broadcast = new Broadcast();
	conn.publish(Path.from(q.get("publish")), broadcast);
	const request = await broadcast.requested();
	const { track } = request;
	writeGroup(track, 0);
	await emit({ event: "serving", track: track.name });
	await fetch("/wait?for=go");
	for (let g = 1; g <= groups; g++) {
		writeGroup(track, g);
		if (g % 20 === 0) await new Promise((r) => setTimeout(r, 0));
	}
	track.close();
	await emit({ event: "published" });
	// Stay connected until the Go subscriber has everything.
	await fetch("/wait?for=quit");
}

try {
	const conn = await Connection.connect(new URL(q.get("relay")), { websocket: { enabled: false } });
	await emit({ event: "ready", version: conn.version });
	await Promise.all([subscribe(conn), publish(conn)]);
	conn.close();
	await emit({ event: "closed" });
} catch (e) {
	await emit({ event: "error", message: String(e?.stack ?? e) });
}
