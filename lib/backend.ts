// The one place the backend is chosen. The CUDA probe runs in a child process first, so a
// broken driver or library can only take down that child, never the user's process.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { NativeCudaProbe } from '../types/native';
import { addonPath, packageRoot } from './native';
import { oneOf } from './validate';

export type BackendName = 'cpu' | 'cuda';

export interface CudaStatus {
  /** The probe's findings, or null when the probe itself failed. */
  probe: NativeCudaProbe | null;
  /** Set when the probe child crashed or timed out. */
  probeError?: string;
  /** Path of the CUDA backend library shipped with this install, if any. */
  backendLibrary: string | null;
  /** Everything still missing for the GPU path, as actions a user can take. */
  missing: string[];
}

let cached: CudaStatus | undefined;

/**
 * The CUDA kernels build (cuda/) and run under the CPU emulator in tests, but the GPU
 * forward pass is not connected to loadModel yet; until it is, 'cuda' cannot be chosen.
 */
export const CUDA_FORWARD_AVAILABLE = false;

/** The CUDA backend shared library next to the addon (prebuild or local build), if present. */
export function cudaBackendLibrary(): string | null {
  const names = process.platform === 'win32' ? ['sdllm_cuda.dll'] : ['libsdllm_cuda.so'];
  const dirs = [path.dirname(addonPath()), path.join(packageRoot(), 'build', 'Release'), path.join(packageRoot(), 'build', 'cuda')];
  for (const dir of dirs) for (const n of names) if (fs.existsSync(path.join(dir, n))) return path.join(dir, n);
  return null;
}

export function cudaStatus(): CudaStatus {
  if (cached) return cached;
  const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(addonPath())}).probeCuda()))`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  let probe: NativeCudaProbe | null = null;
  let probeError: string | undefined;
  if (child.status === 0) {
    probe = JSON.parse(child.stdout) as NativeCudaProbe;
  } else {
    probeError = child.signal
      ? `the CUDA probe process was killed by ${child.signal} (a broken driver or library)`
      : `the CUDA probe process failed: ${(child.stderr || child.error?.message || '').trim()}`;
  }
  const missing: string[] = [];
  if (!probe) missing.push('a working NVIDIA driver (the probe failed; see above)');
  else {
    if (!probe.driverFound) {
      missing.push(`the NVIDIA driver (libcuda): ${probe.driverError || 'not found'}; install the NVIDIA driver for your GPU, or set SDLLM_CUDA_DRIVER to the path of libcuda.so.1`);
    } else if (probe.devices.length === 0) {
      missing.push('a CUDA device: the driver loads but reports no GPU');
    }
    if (!probe.cublasFound) {
      missing.push('cuBLAS (libcublas.so.12 or .13): install the CUDA runtime libraries (e.g. apt-get install libcublas-12-x, or pip\'s nvidia-cublas-cu12) and put them on LD_LIBRARY_PATH, or set SDLLM_CUBLAS_LIBRARY to the file');
    }
  }
  const backendLibrary = cudaBackendLibrary();
  if (!backendLibrary) missing.push('the CUDA backend library of this package (libsdllm_cuda; not in this build)');
  if (!CUDA_FORWARD_AVAILABLE) missing.push('a GPU forward path, which this version of streaming-dllm does not have yet (CPU backend only)');
  cached = { probe, probeError, backendLibrary, missing };
  return cached;
}

/** Decides the backend for loadModel: what it chose and why. Throws for an unusable 'cuda'. */
export function chooseBackend(requested: unknown): { backend: BackendName; reason: string } {
  const want = oneOf('backend', requested ?? 'auto', ['auto', 'cpu', 'cuda'] as const);
  if (want === 'cpu') return { backend: 'cpu', reason: 'backend: cpu was requested' };
  const status = cudaStatus();
  if (want === 'cuda') {
    throw new Error(`backend 'cuda' is not available. Missing: ${status.missing.join('; ')}. Use backend: 'cpu' or 'auto'.`);
  }
  return { backend: 'cpu', reason: `auto: using the CPU backend because the GPU path lacks ${status.missing.join('; ')}` };
}
