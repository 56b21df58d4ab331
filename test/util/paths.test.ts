import { describe, expect, it } from 'vitest';
import { tmpDir } from '../helpers/index.ts';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../src/errors.ts';
import {
  fsErrorToUser,
  requireAdapterDir,
  requireModelDir,
  requireOutputDir,
  requireOutputFile,
  withFsErrors,
} from '../../src/util/paths.ts';

const tmp = () => tmpDir('paths');

describe('job paths', () => {
  it('an output dir must be a directory, or creatable', () => {
    const d = tmp();
    const file = path.join(d, 'afile');
    fs.writeFileSync(file, '');
    expect(() => requireOutputDir(file, '--output-model')).toThrow(
      `${file}: is a file; --output-model names a directory to write into`,
    );
    expect(() => requireOutputDir(path.join(file, 'sub', 'deeper'), '--out')).toThrow(
      `${path.join(file, 'sub', 'deeper')}: cannot be created, ${file} is a file`,
    );
    expect(() => requireOutputDir(path.join(d, 'new', 'dir'), '--out')).not.toThrow();
    expect(() => requireOutputDir(d, '--out')).not.toThrow();
    expect(fs.existsSync(path.join(d, 'new'))).toBe(false); // checking writes nothing
  });

  it('an output file must not be a directory', () => {
    const d = tmp();
    expect(() => requireOutputFile(d, '--out', 'loss.svg')).toThrow(
      `${d}: is a directory; --out names the file to write (e.g. ${path.join(d, 'loss.svg')})`,
    );
    expect(() => requireOutputFile(path.join(d, 'x.svg'), '--out', 'loss.svg')).not.toThrow();
  });

  it('model and adapter dirs are named with the flag that gave them', () => {
    const d = tmp();
    expect(() => requireAdapterDir(path.join(d, 'nodir'), '--adapter')).toThrow(
      /nodir: no such directory \(expected a PEFT adapter directory .* for --adapter\)/,
    );
    expect(() => requireAdapterDir(d, '--adapter')).toThrow(
      /adapter_config.json: no such file \(--adapter expects a PEFT adapter directory/,
    );
    expect(() => requireModelDir(d, '--base-model')).toThrow(
      /config.json: no such file \(--base-model expects a Hugging Face model directory/,
    );
  });

  it('fs errors become one line naming the path; other errors are left alone', async () => {
    const d = tmp();
    let err: unknown;
    try {
      fs.renameSync(path.join(d, 'missing'), path.join(d, 'dest'));
    } catch (e) {
      err = e;
    }
    const u = fsErrorToUser(err);
    expect(u).toBeInstanceOf(UserError);
    expect((u as Error).message).toBe(`${path.join(d, 'dest')}: cannot rename (ENOENT)`);
    const bug = new TypeError('x is undefined');
    expect(fsErrorToUser(bug)).toBe(bug);
    const run = withFsErrors(async () => {
      fs.writeFileSync(d, 'x'); // EISDIR
      return 0;
    });
    await expect(run([])).rejects.toThrow(new UserError(`${d}: cannot open (EISDIR)`));
  });
});
