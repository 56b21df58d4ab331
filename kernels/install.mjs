// install.mjs: `npm install` hook; builds the native addon with node-gyp, and never fails the install
// (without a compiler or headers lorasft runs on the slower 'cpu' backend, with a warning at start).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

// Use the headers of the running node when they are installed next to it (Debian/NodeSource: /usr/include/node),
// so node-gyp needs no download; otherwise node-gyp fetches them (needs network).
const prefix = path.resolve(process.execPath, '../..');
const args = ['rebuild'];
if (existsSync(path.join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);

// npm exposes its bundled node-gyp as npm_config_node_gyp; fall back to node-gyp on PATH.
const gypJs = process.env.npm_config_node_gyp;
const r =
  gypJs && existsSync(gypJs)
    ? spawnSync(process.execPath, [gypJs, ...args], { stdio: 'inherit' })
    : spawnSync('node-gyp', args, { stdio: 'inherit', shell: process.platform === 'win32' });
if (r.status !== 0) {
  console.warn(
    "warning: lorasft native addon was not built (node-gyp failed); training will use the slow 'cpu' backend.",
  );
}
