// Generates examples/demo/train.jsonl, the bundled demo dataset: short questions whose answers always take the
// same form, `Answer: X.`, so a LoRA adapter on even a tiny random model learns the format quickly.
//   npx tsx examples/demo/make-data.ts   (deterministic; rewrites train.jsonl)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const capitals: [string, string][] = [
  ['France', 'Paris'], ['Germany', 'Berlin'], ['Italy', 'Rome'], ['Spain', 'Madrid'], ['Japan', 'Tokyo'], ['China', 'Beijing'],
  ['Canada', 'Ottawa'], ['Egypt', 'Cairo'], ['Kenya', 'Nairobi'], ['Peru', 'Lima'], ['Chile', 'Santiago'], ['Norway', 'Oslo'],
  ['Sweden', 'Stockholm'], ['Finland', 'Helsinki'], ['Poland', 'Warsaw'], ['Greece', 'Athens'], ['Portugal', 'Lisbon'],
  ['Ireland', 'Dublin'], ['Austria', 'Vienna'], ['Hungary', 'Budapest'], ['Russia', 'Moscow'], ['India', 'New Delhi'],
  ['Thailand', 'Bangkok'], ['Vietnam', 'Hanoi'], ['Mexico', 'Mexico City'], ['Cuba', 'Havana'], ['Turkey', 'Ankara'],
  ['Australia', 'Canberra'], ['Argentina', 'Buenos Aires'], ['Brazil', 'Brasilia'],
];
const opposites: [string, string][] = [
  ['hot', 'cold'], ['big', 'small'], ['fast', 'slow'], ['up', 'down'], ['light', 'dark'], ['happy', 'sad'], ['open', 'closed'],
  ['early', 'late'], ['full', 'empty'], ['hard', 'soft'], ['high', 'low'], ['old', 'new'], ['rich', 'poor'], ['wet', 'dry'],
  ['strong', 'weak'], ['long', 'short'], ['loud', 'quiet'], ['thick', 'thin'], ['near', 'far'], ['win', 'lose'],
];
const colors: [string, string][] = [
  ['the sky', 'blue'], ['grass', 'green'], ['snow', 'white'], ['coal', 'black'], ['a banana', 'yellow'], ['a tomato', 'red'],
  ['an orange', 'orange'], ['a plum', 'purple'], ['chocolate', 'brown'], ['a flamingo', 'pink'], ['the sea', 'blue'], ['a lemon', 'yellow'],
];
const numbers = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

// Small seeded generator so the file is the same on every run.
let s = 20240611;
const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];

const rows: { messages: { role: string; content: string }[] }[] = [];
const add = (q: string, a: string) => rows.push({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: `Answer: ${a}.` }] });
for (const [c, cap] of capitals) {
  add(`What is the capital of ${c}?`, cap);
  add(pick([`Which city is the capital of ${c}?`, `Name the capital of ${c}.`, `${c}'s capital is which city?`]), cap);
}
for (const [w, o] of opposites) {
  add(`What is the opposite of "${w}"?`, o);
  add(pick([`Give the opposite of "${w}".`, `Antonym of "${w}"?`]), o);
  add(`What is the opposite of "${o}"?`, w);
}
for (const [thing, col] of colors) {
  add(`What color is ${thing}?`, col);
  add(pick([`Which color does ${thing} have?`, `Tell me the color of ${thing}.`]), col);
}
for (let i = 0; i < 120; i++) {
  const a = Math.floor(rand() * 6);
  const b = Math.floor(rand() * 5);
  add(pick([`What is ${a} plus ${b}?`, `How much is ${a} + ${b}?`, `Add ${numbers[a]} and ${numbers[b]}.`]), String(a + b));
}
// Shuffle so the carve-out and the epochs see every kind.
for (let i = rows.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [rows[i], rows[j]] = [rows[j], rows[i]];
}
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'train.jsonl');
fs.writeFileSync(out, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
console.log(`wrote ${rows.length} examples to ${out}`);
