// Subscribes to tracks of a broadcast and verifies every frame. Reports the
// first group of each track at once ("first"), then a result per track when
// it ends.
//   node subscribe.mjs --url URL --mode MODE --broadcast PATH --tracks t0,t1 --groups N --frames F [--format text]
// With --format text every frame must be the text "track:group:frame" (what
// `moq pub` sends for such lines); otherwise the binary payloads of lib.mjs.
import { Path, args, connect, emit, exit, verify, verifyText } from "./lib.mjs";

const a = args();
const groups = Number(a.groups);
const frames = Number(a.frames);

const conn = await connect(a.url, a.mode);
emit({ event: "ready", version: conn.version });
const broadcast = conn.consume(Path.from(a.broadcast));

async function run(name) {
	const track = broadcast.subscribe(name, 0);
	const seen = new Set();
	const errors = [];
	let first;
	try {
		for (;;) {
			const group = await track.recvGroup();
			if (!group) break;
			let f = 0;
			for (;;) {
				const frame = await group.readFrame();
				if (!frame) break;
				const check = a.format === "text" ? verifyText : verify;
				const err = check(frame, name, group.sequence, f);
				if (err && errors.length < 10) errors.push(err);
				f++;
			}
			if (f !== frames && errors.length < 10) errors.push(`group ${group.sequence}: ${f} frames, want ${frames}`);
			if (seen.has(group.sequence) && errors.length < 10) errors.push(`group ${group.sequence} twice`);
			seen.add(group.sequence);
			if (first === undefined) {
				first = group.sequence;
				emit({ event: "first", track: name, group: first });
			}
		}
	} catch (e) {
		errors.push(`track ended with ${e?.message ?? e}`);
	}
	const missing = [];
	for (let g = (first ?? 0) + 1; g <= groups; g++) if (!seen.has(g)) missing.push(g);
	emit({ event: "result", track: name, groups: seen.size, first, missing: missing.slice(0, 20), missingCount: missing.length, errors });
}

await Promise.all(a.tracks.split(",").map(run));
conn.close();
exit(0);
