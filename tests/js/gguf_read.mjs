// Independent GGUF readers for bitsmith's tests (tests/convert/gguf_test.cc).
//
// usage: node gguf_read.mjs NODE_MODULES_DIR FILE.gguf
// Parses FILE with @huggingface/gguf and with hyllama (whichever is installed
// under NODE_MODULES_DIR; `make npm-deps` installs both into build/npm) and prints
// one JSON object: {"<reader>": {version, tensor_data_offset, kv: {key: {type,
// value}}, tensors: [{name, ne, type, offset}]} | {"error": "..."} | null}.
// 64-bit integers are printed as decimal strings; the C++ test compares them
// with what bitsmith wrote.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [modules, file] = process.argv.slice(2);
const out = {};
const big = (v) => (typeof v === 'bigint' ? v.toString() : v);
const plain = (v) => (Array.isArray(v) ? v.map(plain) : big(v));

async function load(spec) {
  const p = path.join(modules, spec);
  if (!fs.existsSync(p)) return null;
  const pkg = JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8'));
  let entry = pkg.module || pkg.main;
  if (pkg.exports && pkg.exports['.'] && pkg.exports['.'].import) entry = pkg.exports['.'].import;
  return import(pathToFileURL(path.join(p, entry)).href);
}

// @huggingface/gguf: typed metadata (value + GGUF type), computed data offset.
try {
  const hf = await load('@huggingface/gguf');
  if (!hf) {
    out.huggingface = null;
  } else {
    const r = await hf.gguf(path.resolve(file), { allowLocalFile: true, typedMetadata: true });
    const kv = {};
    for (const [k, v] of Object.entries(r.typedMetadata)) {
      if (k === 'version' || k === 'tensor_count' || k === 'kv_count') continue;
      kv[k] = { type: v.type, value: plain(v.value) };
      if (v.subType !== undefined) kv[k].sub_type = v.subType;
    }
    out.huggingface = {
      version: Number(r.typedMetadata.version.value),
      tensor_data_offset: big(r.tensorDataOffset),
      kv,
      tensors: r.tensorInfos.map((t) => ({ name: t.name, ne: t.shape.map(big), type: t.dtype, offset: big(t.offset) })),
    };
  }
} catch (e) {
  out.huggingface = { error: String(e && e.message ? e.message : e) };
}

// hyllama: plain metadata, tensor infos as stored.
try {
  const hy = await load('hyllama');
  if (!hy) {
    out.hyllama = null;
  } else {
    const buf = fs.readFileSync(file);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const { metadata, tensorInfos } = hy.ggufMetadata(ab);
    const kv = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (k === 'version' || k === 'tensorCount') continue;
      kv[k] = { value: plain(v) };
    }
    out.hyllama = {
      version: metadata.version,
      kv,
      tensors: tensorInfos.map((t) => ({ name: t.name, ne: t.shape.map(big), type: t.type, offset: big(t.offset) })),
    };
  }
} catch (e) {
  out.hyllama = { error: String(e && e.message ? e.message : e) };
}

process.stdout.write(JSON.stringify(out) + '\n');
