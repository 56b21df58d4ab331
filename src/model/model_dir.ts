// The files of a Hugging Face model dir, for commands that replace the model in a dir (make-tiny-model and merge
// with --overwrite): the previous model's tokenizer, shards or generation config must not stay beside the new one.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The files loaders read next to config.json (transformers, vLLM, lorasft): what a replaced model may leave behind. */
const MODEL_DIR_FILE =
  /^(config\.json|generation_config\.json|model(-\d+-of-\d+)?\.safetensors|model\.safetensors\.index\.json|pytorch_model(-\d+-of-\d+)?\.bin|pytorch_model\.bin\.index\.json|tokenizer\.json|tokenizer_config\.json|tokenizer\.model|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|chat_template\.(jinja|json))$/;

/**
 * After a model was written to `out` (`written`: its file names; `present`: the names there before): removes the
 * previous model's files the new one lacks. Only model-dir files, only plain files (a symlink is removed, never
 * what it points to); anything else in `out` stays.
 */
export function removeStaleModelFiles(out: string, present: string[], written: string[]): void {
  for (const f of present) {
    if (!MODEL_DIR_FILE.test(f) || written.includes(f)) continue;
    const p = path.join(out, f);
    if (fs.lstatSync(p).isDirectory()) continue;
    fs.rmSync(p);
  }
}
