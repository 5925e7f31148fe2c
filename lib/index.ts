// streaming-dllm: diffusion language models for Node.js with Streaming-dLLM decoding.
export { loadModel, defaultModelDir } from './model';
export { resolveOptions, STREAMING_DEFAULTS, FAST_DLLM_THRESHOLD } from './options';
export { QueueFullError } from './scheduler';
export { ChatTemplateError } from './chat';
export { serve } from './server';
import { native } from './native';
import type { NativeRuntimeInfo } from '../types/native';
export type * from '../types';

/** CPU features and thread count of the native backend. */
export function runtimeInfo(): NativeRuntimeInfo {
  return native.runtimeInfo();
}
