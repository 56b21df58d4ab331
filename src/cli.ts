// lorasft command line: `lorasft <command> [flags]`. Each command lives in src/commands/<command>.ts
// and exports `run(argv): Promise<number>` (the exit code).
import * as fs from 'node:fs';
import { UserError } from './errors.ts';

/** This package's version (package.json), for `lorasft --version`. */
export function version(): string {
  return (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
}

const COMMANDS: Record<string, { help: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  validate: {
    help: 'check a JSONL dataset against the managed-job rules',
    load: () => import('./commands/validate.ts'),
  },
  preview: {
    help: 'show rendered, tokenized and masked training examples',
    load: () => import('./commands/preview.ts'),
  },
  'loss-grad': {
    help: 'loss and LoRA gradients of one batch (for parity checks)',
    load: () => import('./commands/loss-grad.ts'),
  },
  train: { help: 'run a LoRA SFT job', load: () => import('./commands/train.ts') },
  generate: {
    help: 'generate text with a base model and optional adapter',
    load: () => import('./commands/generate.ts'),
  },
  merge: {
    help: 'merge an adapter into the base weights as a new HF model dir',
    load: () => import('./commands/merge.ts'),
  },
  plot: { help: 'plot the loss curves of a job', load: () => import('./commands/plot.ts') },
  serve: {
    help: 'serve the REST API for datasets, fine-tuning jobs and models',
    load: () => import('./commands/serve.ts'),
  },
  dataset: {
    help: 'create, get, list, delete datasets on a lorasft serve',
    load: () => import('./commands/dataset.ts'),
  },
  sftj: {
    help: 'create, get, list, cancel, resume, delete fine-tuning jobs on a lorasft serve',
    load: () => import('./commands/sftj.ts'),
  },
  deployment: {
    help: 'create, get, list, delete deployments on a lorasft serve; load-lora, unload-lora',
    load: () => import('./commands/deployment.ts'),
  },
  model: {
    help: 'list, get, download, delete models on a lorasft serve; import a local model dir',
    load: () => import('./commands/model.ts'),
  },
};

function usage(): string {
  const lines = [
    'usage: lorasft <command> [flags]   (lorasft <command> --help for its flags; lorasft --version)',
    '',
    'commands:',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.help}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd) {
    console.error(usage());
    return 1;
  }
  if (cmd === '--version' || cmd === '-V') {
    console.log(`lorasft ${version()}`);
    return 0;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`lorasft: unknown command '${cmd}'\n\n${usage()}`);
    return 1;
  }
  try {
    const mod = await entry.load();
    return await mod.run(rest);
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`error: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
