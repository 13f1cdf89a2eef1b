// Drives @moq/token for the Go token interop test: one JSON request per
// stdin line, one JSON response per stdout line, until stdin ends.
//   {"op":"version"}                                → {"version"}
//   {"op":"generate","alg":"ES256"}                 → {"key", "public"} (JWK objects; public is null for HMAC)
//   {"op":"sign","key":KEYTEXT,"claims":{...}}      → {"token"}
//   {"op":"verify","key":KEYTEXT,"token":T,"root":R} → {"claims"}
// KEYTEXT is a key file's contents: JWK JSON or base64url JWK JSON. A failed
// request answers {"error": message}.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

// stdout carries only our responses.
console.log = console.info = console.debug = console.warn = (...args) =>
	process.stderr.write(args.map(String).join(" ") + "\n");

const { generate, load, loadPublic, sign, toPublicKey, verify } = await import("@moq/token");
const { version } = JSON.parse(
	readFileSync(new URL("./node_modules/@moq/token/package.json", import.meta.url), "utf8"),
);

/** Loads a verifying key the way the moq-token CLI does: public first, then symmetric. */
function loadVerifier(text) {
	try {
		return loadPublic(text);
	} catch {
		return load(text);
	}
}

async function handle(req) {
	switch (req.op) {
		case "version":
			return { version };
		case "generate": {
			const key = await generate(req.alg, req.kid);
			return { key, public: key.kty === "oct" ? null : toPublicKey(key) };
		}
		case "sign":
			return { token: await sign(load(req.key), req.claims) };
		case "verify":
			return { claims: await verify(loadVerifier(req.key), req.token, req.root) };
		default:
			throw new Error(`unknown op ${req.op}`);
	}
}

for await (const line of createInterface({ input: process.stdin })) {
	if (!line.trim()) continue;
	let res;
	try {
		res = await handle(JSON.parse(line));
	} catch (e) {
		res = { error: String(e?.message ?? e) };
	}
	process.stdout.write(JSON.stringify(res) + "\n");
}
