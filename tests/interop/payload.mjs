// The deterministic payloads of the interop scenarios, shared by the Node
// scripts and the browser page. interop_test.go has the same functions.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The payload of frame f of group g of a track: "track:group:frame:millis:"
 * then filler bytes whose length and values follow from the counters.
 * The Go test has the same function.
 */
export function payload(track, group, frame) {
	const header = encoder.encode(`${track}:${group}:${frame}:${Date.now()}:`);
	const n = fillerLength(track, group, frame);
	const out = new Uint8Array(header.length + n);
	out.set(header);
	for (let i = 0; i < n; i++) out[header.length + i] = (group + 3 * frame + i) & 0xff;
	return out;
}

function fillerLength(track, group, frame) {
	return (group * 31 + frame * 17 + track.length * 7) % 512;
}

/** Checks a payload; returns an error string or undefined. */
export function verify(data, track, group, frame) {
	let colons = 0;
	let end = -1;
	for (let i = 0; i < data.length && i < 256; i++) {
		if (data[i] === 0x3a && ++colons === 4) {
			end = i + 1;
			break;
		}
	}
	if (end < 0) return `t=${track} g=${group} f=${frame}: no header`;
	const [t, g, f, ts] = decoder.decode(data.subarray(0, end - 1)).split(":");
	if (t !== track || Number(g) !== group || Number(f) !== frame) {
		return `t=${track} g=${group} f=${frame}: header says ${t}:${g}:${f}`;
	}
	if (!(Number(ts) > 0 && Number(ts) <= Date.now())) return `t=${track} g=${group} f=${frame}: bad time ${ts}`;
	const n = fillerLength(track, group, frame);
	if (data.length - end !== n) return `t=${track} g=${group} f=${frame}: ${data.length - end} filler bytes, want ${n}`;
	for (let i = 0; i < n; i++) {
		if (data[end + i] !== ((group + 3 * frame + i) & 0xff)) return `t=${track} g=${group} f=${frame}: filler byte ${i} differs`;
	}
	return undefined;
}

/** Checks a text frame "track:group:frame"; returns an error string or undefined. */
export function verifyText(data, track, group, frame) {
	const got = decoder.decode(data);
	const want = `${track}:${group}:${frame}`;
	return got === want ? undefined : `t=${track} g=${group} f=${frame}: got ${JSON.stringify(got)}`;
}

/**
 * Reads track (named name) to its end, checking every frame with
 * check(data, name, group, frame) and that each group holds frames frames
 * and comes once. onFirst(sequence) is awaited after the first group. The
 * result counts the groups seen and lists those missing after the first, up
 * to groups.
 */
export async function readTrack(track, name, { groups, frames, check = verify, onFirst }) {
	const seen = new Set();
	const errors = [];
	const fail = (err) => errors.length < 10 && errors.push(err);
	let first;
	try {
		for (;;) {
			const group = await track.recvGroup();
			if (!group) break;
			let f = 0;
			for (;;) {
				const frame = await group.readFrame();
				if (!frame) break;
				const err = check(frame, name, group.sequence, f);
				if (err) fail(err);
				f++;
			}
			if (f !== frames) fail(`group ${group.sequence}: ${f} frames, want ${frames}`);
			if (seen.has(group.sequence)) fail(`group ${group.sequence} twice`);
			seen.add(group.sequence);
			if (first === undefined) {
				first = group.sequence;
				await onFirst?.(first);
			}
		}
	} catch (e) {
		errors.push(`track ended with ${e?.message ?? e}`);
	}
	const missing = [];
	for (let g = (first ?? 0) + 1; g <= groups; g++) if (!seen.has(g)) missing.push(g);
	return { groups: seen.size, first, missing: missing.slice(0, 20), missingCount: missing.length, errors };
}
