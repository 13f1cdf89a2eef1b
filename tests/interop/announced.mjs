// Prints every announcement under a prefix until "quit" on stdin.
//   node announced.mjs --url URL --mode MODE --prefix PATH
import { Path, args, connect, emit, exit, stdinLines } from "./lib.mjs";

const a = args();
const conn = await connect(a.url, a.mode);
emit({ event: "ready", version: conn.version });
const nextLine = stdinLines();
let quitting = false;
(async () => {
	for (;;) {
		if ((await nextLine()) === "quit") {
			quitting = true;
			conn.close();
			exit(0);
		}
	}
})();
const announced = conn.announced(Path.from(a.prefix));
try {
	for (;;) {
		const entry = await announced.next();
		if (!entry) break;
		emit({ event: "announce", path: entry.path, active: entry.active });
	}
} catch (e) {
	// Closing the connection ends the announcements with an error.
	if (!quitting) throw e;
}
