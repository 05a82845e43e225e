// Downloads files from the fake Hub with the official JS client (@huggingface/hub's
// downloadFile: Xet or plain as its probe decides), whole and sliced, and hashes with the
// official @huggingface/xetchunk-wasm and blake3-jit, so test_xet.py can compare all of it with
// what the fake serves and how it names things. Run by test_xet.py:
//   node xet_js_check.mjs NPM_DIR REQUEST_JSON OUT_DIR
// REQUEST_JSON: {"hubUrl", "repo", "revision", "dataKey": [32 bytes],
//   "files": [{"path", "slices": [[start, end]], "chunkEnds": [the fake's chunk ends],
//              "forced": {"hash", "refreshUrl", "size"}}],
//   "xorbs": [{"name", "chunks": [[chunk hash string, size]]}]}.
// Writes OUT_DIR/<i>.bin (file i) and OUT_DIR/<i>-<j>.bin (its slice j), OUT_DIR/<i>-forced.bin
// (with "forced": read by __internal_XetBlob from the hash and the read-token URL alone, so
// through the token's casUrl, as huggingface_hub does from a listing's xetHash), and prints one JSON
// line: {"files": [{"path", "size", "blob" (the client's class), "fileHash" (of the bytes cut
// at chunkEnds), "jsChunkEnds" (xetchunk-wasm's own cuts)}], "xorbs": [{"name", "xorbHash"}]}.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [npmDir, requestFile, outDir] = process.argv.slice(2);
const load = (pkg, file) => import(pathToFileURL(join(npmDir, "node_modules", pkg, file)).href);
const hub = await load("@huggingface/hub", "dist/index.mjs");
const chunker = await load("@huggingface/xetchunk-wasm", "dist/esm/index.js");
const request = JSON.parse(readFileSync(requestFile, "utf8"));

const blake3 = await load("@huggingface/blake3-jit", "dist/esm/index.js");
const dataKey = new Uint8Array(request.dataKey);

const files = [];
for (const [i, file] of request.files.entries()) {
	const blob = await hub.downloadFile({
		repo: request.repo,
		path: file.path,
		revision: request.revision,
		hubUrl: request.hubUrl,
	});
	if (blob === null) {
		throw new Error(`${file.path}: not found`);
	}
	const bytes = new Uint8Array(await blob.arrayBuffer());
	writeFileSync(join(outDir, `${i}.bin`), bytes);
	for (const [j, [start, end]] of (file.slices ?? []).entries()) {
		const part = new Uint8Array(await blob.slice(start, end).arrayBuffer());
		writeFileSync(join(outDir, `${i}-${j}.bin`), part);
	}
	if (file.forced) {
		const forced = new hub.__internal_XetBlob(file.forced);
		writeFileSync(join(outDir, `${i}-forced.bin`), new Uint8Array(await forced.arrayBuffer()));
	}
	const ours = [];
	let start = 0;
	for (const end of file.chunkEnds ?? []) {
		const hash = blake3.createKeyed(dataKey).update(bytes.subarray(start, end)).finalize(32);
		ours.push({ hash, length: end - start });
		start = end;
	}
	const jsEnds = [];
	let pos = 0;
	for (const c of chunker.getChunks(bytes)) {
		pos += c.length;
		jsEnds.push(pos);
	}
	files.push({
		path: file.path,
		size: bytes.length,
		blob: blob.constructor.name,
		fileHash: ours.length ? chunker.hashToHex(chunker.fileHash(ours)) : null,
		jsChunkEnds: jsEnds,
	});
}
const xorbs = (request.xorbs ?? []).map((x) => ({
	name: x.name,
	xorbHash: chunker.hashToHex(
		chunker.xorbHash(x.chunks.map(([h, length]) => ({ hash: chunker.hexToBytes(h), length }))),
	),
}));
console.log(JSON.stringify({ files, xorbs }));
