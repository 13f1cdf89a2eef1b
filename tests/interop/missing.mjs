// Subscribes to a broadcast that does not exist and reports how it ends.
//   node missing.mjs --url URL --mode MODE --broadcast PATH
import { Path, args, connect, emit, exit } from "./lib.mjs";

const a = args();
const conn = await connect(a.url, a.mode);
emit({ event: "ready", version: conn.version });
const track = conn.consume(Path.from(a.broadcast)).subscribe("video", 0);
const timeout = new Promise((resolve) => setTimeout(() => resolve("hang"), 10000).unref());
let outcome;
try {
	const got = await Promise.race([track.readFrame().then((f) => (f ? "frame" : "ended")), timeout]);
	outcome = { outcome: got };
} catch (e) {
	outcome = { outcome: "error", message: String(e?.message ?? e) };
}
emit({ event: "result", ...outcome });
conn.close();
exit(0);
