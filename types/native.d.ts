// The N-API surface of the addon (cpp/napi/): a model, a session with its KV cache,
// one forward call, and dispose. Everything heavy returns a Promise and runs off the
// JS thread. Hand-written: keep in step with cpp/napi/addon.cpp.

export type NativeFamily = 'llada' | 'dream';
export type NativeDType = 'F32' | 'F16' | 'BF16';

export interface NativeModelInfo {
  family: NativeFamily;
  modelType: string;
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  nLayers: number;
  mlpHidden: number;
  vocabSize: number;
  embeddingSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  maxSequenceLength: number;
  weightTying: boolean;
  qkvBias: boolean;
  maskTokenId: number;
  eosTokenId: number;
  padTokenId: number;
  bosTokenId: number;
  dtype: NativeDType;
  files: string[];
  weightBytes: number;
  /** Bytes of float32 weight copies made at load for the AVX-512 GEMM (cpp/repack.cpp); 0 if none. */
  repackedBytes: number;
}

/** 0 = prob, 1 = margin, 2 = entropy, 3 = random (cpp/ops.h ConfidenceKind). */
export type NativeConfidenceKind = 0 | 1 | 2 | 3;

export interface NativeForwardRequest {
  tokens: Int32Array;
  positions: Int32Array;
  /** Keys/values from cache slots [0, cacheAttend). */
  cacheAttend: number;
  /** Write rows [0, rows) of this input into cache slots [start, start + rows) before attention. */
  cacheWrite?: { start: number; rows: number };
  /** Also attend to the new rows themselves, after the cache segment. */
  attendSelf: boolean;
  /** Rows of this input whose top-1 and confidence are wanted. */
  predictRows: Int32Array;
  confidence: NativeConfidenceKind;
  temperature: number;
  /** Confidences from softmax(logits / confidenceTemperature); default 1 (Dream passes T when T > 0). */
  confidenceTemperature?: number;
  seed: number;
  noiseCounter: number;
  returnLogits: boolean;
}

export interface NativeForwardResult {
  tokenIds: Int32Array;
  confidences: Float32Array;
  /** [predictRows.length, vocabSize] when returnLogits was set. */
  logits?: Float32Array;
}

export interface NativeSession {
  readonly capacity: number;
  forward(request: NativeForwardRequest): Promise<NativeForwardResult>;
  dispose(): void;
}

export interface NativeModel {
  readonly info: NativeModelInfo;
  /** Where this model's sessions run: the CPU Session or the CUDA library (cpp/backend.h). */
  readonly backend: 'cpu' | 'cuda';
  /** 'CPU', or the CUDA library's description ("device 0: sm_90, 132 SMs; cuBLAS libcublas.so.13"). */
  readonly backendDescription: string;
  createSession(capacity: number): NativeSession;
  /**
   * One forward over several sequences (sessions of this model, each at most once): the
   * projections and MLP run over all rows together, attention and cache writes per
   * sequence. Each result equals what `session.forward(request)` gives alone, bit for bit.
   */
  forwardBatch(items: NativeBatchItem[]): Promise<NativeForwardResult[]>;
  dispose(): void;
}

export interface NativeBatchItem {
  session: NativeSession;
  request: NativeForwardRequest;
}

export interface NativeRuntimeInfo {
  avx2: boolean;
  fma: boolean;
  /** AVX-512 F/VL/BW/DQ usable; the GEMM then runs 16 lanes (same results as AVX2). */
  avx512: boolean;
  kernels: 'avx512' | 'avx2-fma' | 'scalar';
  threads: number;
  /** How `threads` was chosen: the threads option, SDLLM_THREADS, or the default and what bounded it (affinity, physical cores, cgroup quota). */
  threadsReason: string;
}

export interface NativeCudaDevice {
  name: string;
  totalMemory: number;
  computeCapability: string;
}

/** What cpp/cuda_probe.cpp found: driver, devices and cuBLAS, opened with dlopen only. */
export interface NativeCudaProbe {
  driverFound: boolean;
  driverLibrary: string;
  driverError: string;
  driverVersion: number;
  devices: NativeCudaDevice[];
  cublasFound: boolean;
  cublasLibrary: string;
  cublasError: string;
}

export interface NativeLoadOptions {
  threads: number;
  /** Default 'cpu'. 'cuda' dlopens cudaLibrary and uploads the weights to `device`. */
  backend?: 'cpu' | 'cuda';
  /** CUDA device index, default 0. */
  device?: number;
  /** Path of libsdllm_cuda (lib/backend.ts cudaBackendLibrary()); required with 'cuda'. */
  cudaLibrary?: string;
  /** CUDA arithmetic: 'bf16' (default; tensor-core GEMMs and attention) or 'exact' (float32, as the CPU). */
  gpuPrecision?: 'bf16' | 'exact';
  /** 'file' (default) or 'q8': quantize the linear weights to Q8_0 at load (CPU backend only). */
  weights?: 'file' | 'q8';
}

export interface NativeBinding {
  loadModel(dir: string, options: NativeLoadOptions): Promise<NativeModel>;
  runtimeInfo(): NativeRuntimeInfo;
  probeCuda(): NativeCudaProbe;
  /** GFLOP/s of a register-only AVX2 FMA loop on `threads` pool workers (default all), best of 3 rounds of `seconds`; 0 without AVX2+FMA. */
  measureFmaPeak(options?: { threads?: number; seconds?: number }): Promise<number>;
}
