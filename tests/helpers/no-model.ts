import { vi } from 'vitest';

/*
 * Setup file of the fast tiers (unit, contract, storage, install; see vitest.config.ts): they must never load
 * the model. Any attempt to — a test that calls createEmbedder, or code that reaches Transformers.js or ONNX
 * Runtime — fails with this message instead of quietly costing seconds. (Modules that merely import the
 * embedder code, like src/runtime.ts for its logger, still load: the stand-ins refuse only when used.)
 */
const refuse = (what: string) => () => {
  throw new Error(`${what}: the fast test tiers must not load the model. Use tests/helpers/hashed-embedder.ts, or move the test to tests/e2e.`);
};

vi.mock('@huggingface/transformers', () => ({
  env: {},
  pipeline: refuse('@huggingface/transformers pipeline()'),
  AutoTokenizer: { from_pretrained: refuse('@huggingface/transformers AutoTokenizer.from_pretrained()') },
}));
vi.mock('onnxruntime-node', () => ({
  InferenceSession: { create: refuse('onnxruntime-node InferenceSession.create()') },
}));
