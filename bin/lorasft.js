#!/usr/bin/env node
// Entry point: run the TypeScript sources directly through tsx (no build step to go stale).
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
