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
  /** The device index the status was checked for. */
  device: number;
}

let cached: CudaStatus | undefined;

/**
 * The GPU forward pass (cuda/backend.cu behind cpp/cuda_backend.cpp) is connected to
 * loadModel. It is tested end to end against the CPU backend under the CPU emulator
 * (test/native/cuda/test_cuda_forward), but has never been run on a real GPU.
 */
export const CUDA_FORWARD_AVAILABLE = true;
export const CUDA_FORWARD_VERIFIED_ON_GPU = false;
export const CUDA_UNVERIFIED_NOTE =
  'the CUDA forward is tested only under a CPU emulator and has not been run on a real GPU yet; pass backend: \'cpu\' for the reference backend';

/** The CUDA backend shared library next to the addon (prebuild or local build), if present. */
export function cudaBackendLibrary(): string | null {
  const names = process.platform === 'win32' ? ['sdllm_cuda.dll'] : ['libsdllm_cuda.so'];
  const dirs = [path.dirname(addonPath()), path.join(packageRoot(), 'build', 'Release'), path.join(packageRoot(), 'build', 'cuda')];
  for (const dir of dirs) for (const n of names) if (fs.existsSync(path.join(dir, n))) return path.join(dir, n);
  return null;
}

export function cudaStatus(device = 0): CudaStatus {
  if (cached && cached.device === device) return cached;
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
    } else if (device >= probe.devices.length) {
      missing.push(`CUDA device ${device}: the driver reports ${probe.devices.length} device(s)`);
    }
    if (!probe.cublasFound) {
      missing.push('cuBLAS (libcublas.so.12 or .13): install the CUDA runtime libraries (e.g. apt-get install libcublas-12-x, or pip\'s nvidia-cublas-cu12) and put them on LD_LIBRARY_PATH, or set SDLLM_CUBLAS_LIBRARY to the file');
    }
  }
  const backendLibrary = cudaBackendLibrary();
  if (!backendLibrary) missing.push('the CUDA backend library of this package (libsdllm_cuda; not in this build)');
  cached = { probe, probeError, backendLibrary, missing, device };
  return cached;
}

export interface BackendChoice {
  backend: BackendName;
  reason: string;
  /** With 'cuda': the library to load and the device. */
  cudaLibrary?: string;
  device: number;
}

/** Decides the backend for loadModel: what it chose and why. Throws for an unusable 'cuda'. */
export function chooseBackend(requested: unknown, device = 0): BackendChoice {
  const want = oneOf('backend', requested ?? 'auto', ['auto', 'cpu', 'cuda'] as const);
  if (want === 'cpu') return { backend: 'cpu', reason: 'backend: cpu was requested', device };
  const status = cudaStatus(device);
  if (want === 'cuda' && status.missing.length > 0) {
    throw new Error(`backend 'cuda' is not available. Missing: ${status.missing.join('; ')}. Use backend: 'cpu' or 'auto'.`);
  }
  if (status.missing.length > 0) {
    return { backend: 'cpu', reason: `auto: using the CPU backend because the GPU path lacks ${status.missing.join('; ')}`, device };
  }
  const probe = status.probe as NativeCudaProbe;
  const gpu = probe.devices[device];
  const found = `${gpu.name} (device ${device}, compute ${gpu.computeCapability}), ${probe.cublasLibrary}, ${status.backendLibrary}`;
  const reason = want === 'cuda'
    ? `backend: cuda was requested; found ${found}. Note: ${CUDA_UNVERIFIED_NOTE}`
    : `auto: using CUDA because the probe found ${found}. Note: ${CUDA_UNVERIFIED_NOTE}`;
  return { backend: 'cuda', reason, cudaLibrary: status.backendLibrary as string, device };
}
