// The fields of TrainConfig: kind, default, help and whether the managed API's request body has it (FIELDS
// drives the CLI flags, the config file, the REST body and the dashboard's form), and the fields accepted but ignored.
import type { TrainConfig } from './config.ts';

type Kind = 'string' | 'number' | 'int' | 'boolean';
export interface Field {
  kind: Kind;
  default: string | number | boolean;
  help: string;
  /** What `--help` says the default is, when the bare value needs words ('0: no limit', '2 * loraRank'). */
  defaultText?: string;
  /** Accepted values of a string field. */
  choices?: readonly string[];
  /** True for fields of the managed job's request body (echoed in job.json); false for local extras. */
  rest: boolean;
}

/** Defaults that depend on other fields are 0 or '' here and resolved in resolveConfig (loraAlpha: 0 stands for
 * unset, 2 * loraRank; a 0 that a layer gives is an error). */
export const FIELDS: { [K in keyof TrainConfig]: Field } = {
  dataset: {
    kind: 'string',
    default: '',
    rest: true,
    help: 'training data, a JSONL file of chat examples',
    defaultText: 'none; with no base model either, the bundled demo',
  },
  baseModel: {
    kind: 'string',
    default: '',
    rest: true,
    help: 'HF model directory (config.json, *.safetensors, tokenizer files)',
    defaultText: "the warm-start adapter's base model; with no dataset either, the demo model",
  },
  outputModel: {
    kind: 'string',
    default: '',
    rest: true,
    help: 'output directory for the adapter, job.json, metrics',
    defaultText: 'out/<jobId>; the demo: out/demo',
  },
  warmStartFrom: {
    kind: 'string',
    default: '',
    rest: true,
    help: 'PEFT adapter directory to continue training (its rank and alpha win)',
  },
  jinjaTemplate: {
    kind: 'string',
    default: '',
    rest: true,
    help: "chat template (file path or template text) instead of the model's own",
  },
  displayName: { kind: 'string', default: '', rest: true, help: 'human-readable job name, stored in job.json' },
  jobId: {
    kind: 'string',
    default: '',
    rest: false,
    help: 'job id used in job.json name',
    defaultText: 'a random UUID, like the managed service',
  },
  evaluationDataset: {
    kind: 'string',
    default: '',
    rest: true,
    help: 'separate JSONL dataset for evaluation (instead of a carve-out)',
  },
  evalAutoCarveout: {
    kind: 'boolean',
    default: true,
    rest: true,
    help: 'without an evaluation dataset, hold out min(10%, 100) training examples (seeded) for eval',
  },
  earlyStop: {
    kind: 'boolean',
    default: false,
    rest: true,
    help: 'stop when eval loss has not improved for earlyStopPatience evaluations; keep the best adapter',
  },
  epochs: {
    kind: 'number',
    default: 1,
    rest: true,
    help: 'passes over the training data; fractional values stop part-way through the last epoch',
  },
  learningRate: { kind: 'number', default: 1e-4, rest: true, help: 'peak AdamW learning rate' },
  learningRateWarmupSteps: {
    kind: 'int',
    default: 0,
    rest: true,
    help: 'optimizer steps of linear warmup from 0 to learningRate',
  },
  lrScheduler: {
    kind: 'string',
    default: 'constant',
    rest: false,
    choices: ['constant', 'linear', 'cosine'],
    help: 'learning rate after warmup: constant, or linear / cosine decay to 0 at the last step',
    defaultText: 'constant, as the managed job',
  },
  maxContextLength: {
    kind: 'int',
    default: 32768,
    rest: true,
    help: 'examples are truncated to this many tokens, with a warning naming the example',
    defaultText: '32768, as the managed job',
  },
  batchSize: {
    kind: 'int',
    default: 4096,
    rest: true,
    help: 'tokens packed into one forward pass (one micro-batch); an example longer than this gets a row of its own',
  },
  batchSizeSamples: {
    kind: 'int',
    default: 0,
    rest: true,
    help: 'at most this many examples per packed micro-batch',
    defaultText: '0: no limit',
  },
  gradientAccumulationSteps: {
    kind: 'int',
    default: 1,
    rest: true,
    help: 'micro-batches per optimizer step (loss is token-weighted over all of them)',
  },
  loraRank: { kind: 'int', default: 8, rest: true, help: 'LoRA rank r: a power of 2 up to 32' },
  loraAlpha: {
    kind: 'number',
    default: 0,
    rest: false,
    help: 'LoRA alpha (scale = alpha / r)',
    defaultText: '2 * loraRank',
  },
  loraDropout: { kind: 'number', default: 0, rest: false, help: 'dropout on the LoRA input, in [0, 1)' },
  optimizerWeightDecay: {
    kind: 'number',
    default: 0.01,
    rest: true,
    help: 'decoupled AdamW weight decay (LoRA A/B matrices only; there are no trainable biases or norms)',
  },
  checkpointActivations: {
    kind: 'string',
    default: 'auto',
    rest: false,
    choices: ['auto', 'on', 'off'],
    help: 'recompute each decoder layer in the backward pass instead of storing its activations (bounds memory at long contexts, ~1/3 more compute); auto: on when a micro-batch would store more than a quarter of the memory (RAM, or the cgroup limit when lower)',
  },
  maxGradNorm: {
    kind: 'number',
    default: 1.0,
    rest: false,
    help: 'clip the global gradient L2 norm to this value (0: no clipping)',
  },
  evalEverySteps: {
    kind: 'int',
    default: 0,
    rest: false,
    help: 'evaluate every N optimizer steps and at every epoch end',
    defaultText: '0: about 10 evaluations per run',
  },
  earlyStopPatience: {
    kind: 'int',
    default: 3,
    rest: false,
    help: 'with earlyStop: evaluations without improvement before stopping',
  },
  checkpointEverySteps: {
    kind: 'int',
    default: 0,
    rest: false,
    help: 'write a resumable checkpoint every N steps and at epoch ends',
    defaultText: '0: at every evaluation',
  },
  keepCheckpoints: { kind: 'int', default: 2, rest: false, help: 'how many most recent checkpoints to keep' },
  maxSteps: {
    kind: 'int',
    default: 0,
    rest: false,
    help: 'stop after this many optimizer steps; counts as completed',
    defaultText: '0: no limit',
  },
  seed: { kind: 'int', default: 42, rest: false, help: 'seed for LoRA init, carve-out, data order and dropout' },
  backend: {
    kind: 'string',
    default: '',
    rest: false,
    choices: ['', 'native', 'cpu', 'tensorflow'],
    help: 'tensor backend: native, cpu, tensorflow',
    defaultText: 'the fastest present',
  },
  threads: {
    kind: 'int',
    default: 0,
    rest: false,
    help: 'compute threads for the native backend',
    defaultText: '0: all cores',
  },
  precision: {
    kind: 'string',
    default: 'auto',
    rest: false,
    choices: ['auto', 'fp32', 'bf16'],
    help: 'base weights and their matmuls: bf16 keeps 16-bit weights 16-bit (bf16 matmuls, fp32 accumulation; LoRA, optimizer, norms and loss stay fp32); auto: bf16 for bf16 checkpoints on CPUs with native bf16 (AVX512_BF16 + oneDNN), else fp32. resolved_config.json records the choice',
  },
};

type IgnoredKind = 'boolean' | 'int' | 'string' | readonly string[] | { [member: string]: 'boolean' | 'string' };

/** The managed API's type of each ignored field: still checked, so that a wrong value is not silently taken. An
 * object's members are the request's (wandbConfig.url is output only); any other member is unknown. */
export const IGNORED_KINDS: Record<string, IgnoredKind> = {
  awsS3Config: { credentialsSecret: 'string', iamRoleArn: 'string' },
  azureBlobStorageConfig: { credentialsSecret: 'string', managedIdentityClientId: 'string', tenantId: 'string' },
  wandbConfig: { enabled: 'boolean', apiKey: 'string', project: 'string', entity: 'string', runId: 'string' },
  nodes: 'int',
  mtpEnabled: 'boolean',
  mtpNumDraftTokens: 'int',
  mtpFreezeBaseModel: 'boolean',
  isTurbo: 'boolean',
  purpose: ['PURPOSE_UNSPECIFIED', 'PURPOSE_PILOT'],
  metricsFileSignedUrl: 'string',
};

/** Request-body fields that mean nothing on one machine: accepted, ignored, with a notice. */
export const IGNORED_FIELDS: Record<string, string> = {
  awsS3Config: 'datasets are local files',
  azureBlobStorageConfig: 'datasets are local files',
  wandbConfig: 'metrics go to OUT_DIR/metrics.jsonl; plot them with `lorasft plot`',
  nodes: 'training runs in this process',
  mtpEnabled: 'multi-token prediction is not trained',
  mtpNumDraftTokens: 'multi-token prediction is not trained',
  mtpFreezeBaseModel: 'multi-token prediction is not trained',
  isTurbo: 'there is one speed',
  purpose: 'there is no scheduler',
  metricsFileSignedUrl: 'metrics go to OUT_DIR/metrics.jsonl',
};
