// Publishes a broadcast of several tracks. Each requested track gets group 0
// at once; after "go" on stdin, groups 1..N of F frames, then the track ends.
//   node publish.mjs --url URL --mode MODE --broadcast PATH --tracks t0,t1,t2 --groups N --frames F
import { Path, args, connect, emit, exit, payload, stdinLines } from "./lib.mjs";
import { Broadcast } from "@moq/lite";

const a = args();
const groups = Number(a.groups);
const frames = Number(a.frames);
const wanted = new Set(a.tracks.split(","));

const conn = await connect(a.url, a.mode);
const broadcast = new Broadcast();
conn.publish(Path.from(a.broadcast), broadcast);
emit({ event: "ready", version: conn.version });

const nextLine = stdinLines();
let go;
const started = new Promise((resolve) => (go = resolve));
(async () => {
	for (;;) {
		const line = await nextLine();
		if (line === "go") go();
		if (line === "quit") {
			conn.close();
			exit(0);
		}
	}
})();

function writeGroup(track, name, g) {
	const group = track.appendGroup();
	if (group.sequence !== g) throw new Error(`group ${group.sequence}, want ${g}`);
	for (let f = 0; f < frames; f++) group.writeFrame(payload(name, g, f));
	group.close();
}

for (;;) {
	const request = await broadcast.requested();
	if (!request) break;
	const { track } = request;
	if (!wanted.has(track.name)) {
		track.close(new Error("not found"));
		continue;
	}
	emit({ event: "serving", track: track.name });
	writeGroup(track, track.name, 0);
	started.then(async () => {
		for (let g = 1; g <= groups; g++) {
			writeGroup(track, track.name, g);
			// Yield now and then so the connection keeps sending.
			if (g % 20 === 0) await new Promise((r) => setTimeout(r, 0));
		}
		track.close();
		emit({ event: "done", track: track.name });
	});
}
