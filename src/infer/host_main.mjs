// The inference host's entry point (src/infer/hosted.ts starts it with an IPC channel): TypeScript through tsx, as
// bin/lorasft.js runs the CLI; the settings come in LORASFT_HOST.
import { register } from 'tsx/esm/api';
register();
const { runHost } = await import('./host.ts');
await runHost(JSON.parse(process.env.LORASFT_HOST ?? '{}'));
