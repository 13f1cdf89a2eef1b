// Subscribes to tracks of a broadcast and verifies every frame. Reports the
// first group of each track at once ("first"), then a result per track when
// it ends.
//   node subscribe.mjs --url URL --mode MODE --broadcast PATH --tracks t0,t1 --groups N --frames F [--format text]
// With --format text every frame must be the text "track:group:frame" (what
// `moq pub` sends for such lines); otherwise the binary payloads of lib.mjs.
import { Path, args, connect, emit, exit, readTrack, verify, verifyText } from "./lib.mjs";

const a = args();
const groups = Number(a.groups);
const frames = Number(a.frames);

const conn = await connect(a.url, a.mode);
emit({ event: "ready", version: conn.version });
const broadcast = conn.consume(Path.from(a.broadcast));

async function run(name) {
	const result = await readTrack(broadcast.subscribe(name, 0), name, {
		groups,
		frames,
		check: a.format === "text" ? verifyText : verify,
		onFirst: (group) => emit({ event: "first", track: name, group }),
	});
	emit({ event: "result", track: name, ...result });
}

await Promise.all(a.tracks.split(",").map(run));
conn.close();
exit(0);
