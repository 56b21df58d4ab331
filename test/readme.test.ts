// The README is true about its commands: the two set-up commands, and every `lorasft VERB --flag` it shows names
// a command and flags that command's --help lists (so a shown command does not fail on an unknown flag).
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lorasft } from './helpers/run.ts';

const README = fs.readFileSync(path.join(import.meta.dirname, '../README.md'), 'utf8');
/** Indented code lines and `inline code` spans that run lorasft. */
const shown = [...README.matchAll(/^ {4}(.*)$/gm)]
  .map((m) => m[1])
  .concat(README.split('`').filter((_, i) => i % 2 === 1))
  .filter((l) => /(^|\s)lorasft [a-z]/.test(l));

describe('README commands', () => {
  it('has exactly the two set-up commands', () => {
    expect([...README.matchAll(/^ {4}bash scripts\/setup\.sh.*$/gm)].map((m) => m[0].trim())).toEqual([
      'bash scripts/setup.sh && npx lorasft train',
      'bash scripts/setup.sh && npm test',
    ]);
  });

  it('every lorasft command shown uses a real command and flags its --help lists', async () => {
    expect(shown.length).toBeGreaterThan(10);
    const help = new Map<string, string>();
    const bad: string[] = [];
    for (const line of shown) {
      const m = /lorasft ([a-z-]+)([^]*)$/.exec(line);
      if (!m) continue;
      const [, verb, rest] = m;
      if (!help.has(verb)) help.set(verb, (await lorasft([verb, '--help'])).stdout);
      const text = help.get(verb)!;
      if (!text.includes(`lorasft ${verb}`)) bad.push(`${line}: no command '${verb}'`);
      for (const flag of rest.match(/--[a-z][a-z-]*/g) ?? [])
        if (flag !== '--help' && !text.includes(flag)) bad.push(`${line}: ${verb} has no ${flag}`);
    }
    expect(bad).toEqual([]);
  });
});
