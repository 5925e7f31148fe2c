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
  probe: CudaProbeFindings | null;
  /** Set when the probe child crashed or timed out. */
  probeError?: string;
  /** Path of the CUDA backend library shipped with this install, if any. */
  backendLibrary: string | null;
  /** What that library was built with (its sdllm_cuda.json), or null when unknown. */
  build: CudaBuildInfo | null;
  /** Set when the driver is too old for that library: driver found, driver needed, what to install. */
  driverTooOld?: string;
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

/** What the CUDA backend library was built with: its sdllm_cuda.json (cuda/CMakeLists.txt). */
export interface CudaBuildInfo {
  /** CUDA runtime linked into the library, CUDART_VERSION form: 1000 * major + 10 * minor (13000 = 13.0). */
  cudaRuntime: number;
  /** nvcc's version, e.g. "13.0.88". */
  toolkit?: string;
  runtimeLinkage?: string;
  architectures?: string;
}

/**
 * The oldest Linux driver that runs a CUDA runtime of each major version (NVIDIA's CUDA
 * compatibility guide). Within a major version, minor-version compatibility lets any
 * 12.x runtime run on any driver that supports 12.0 (R525.60.13+); a 13.x runtime needs a
 * driver that supports 13.0 (R580+). `cuda` is what cuDriverGetVersion reports for such a
 * driver (1000 * major + 10 * minor), the number the decision uses; `release` is the
 * driver version users see in nvidia-smi.
 */
export const CUDA_DRIVER_REQUIREMENTS: ReadonlyArray<{ major: number; cuda: number; release: string }> = [
  { major: 11, cuda: 11000, release: '450.80.02' },
  { major: 12, cuda: 12000, release: '525.60.13' },
  { major: 13, cuda: 13000, release: '580' },
];

/** "13.0" from 13000. */
export function cudaVersionString(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** The driver a CUDA runtime needs, or null for a major version the table does not know. */
export function requiredDriver(cudaRuntime: number): { cuda: number; release: string } | null {
  const major = Math.floor(cudaRuntime / 1000);
  const row = CUDA_DRIVER_REQUIREMENTS.find((r) => r.major === major);
  return row ? { cuda: row.cuda, release: row.release } : null;
}

/** The probe's fields this module reads; `driverRelease` comes from newer addons only. */
export type CudaProbeFindings = NativeCudaProbe & { driverRelease?: string };

/**
 * Null when the driver can run the library's CUDA runtime (or when either version is
 * unknown); otherwise the message naming the driver found, the one needed, and what to do.
 * The statically linked CUDA runtime would otherwise fail inside the library
 * (cudaErrorInsufficientDriver) with a less helpful message.
 */
export function driverTooOldMessage(probe: CudaProbeFindings, build: CudaBuildInfo | null): string | null {
  if (!build || !probe.driverFound || !(probe.driverVersion > 0)) return null;
  const need = requiredDriver(build.cudaRuntime);
  if (!need) return null;
  if (probe.driverVersion >= need.cuda) return null;
  const runtime = cudaVersionString(build.cudaRuntime);
  const found = probe.driverRelease ? `driver ${probe.driverRelease}, which supports CUDA ${cudaVersionString(probe.driverVersion)}` :
    `a driver that supports CUDA ${cudaVersionString(probe.driverVersion)}`;
  const older = CUDA_DRIVER_REQUIREMENTS.filter((r) => r.cuda <= probe.driverVersion && r.cuda < need.cuda).pop();
  const rebuild = older
    ? ` or build the CUDA backend with a CUDA ${older.major}.x toolkit (it runs on drivers >= ${older.release}: ` +
      `npm run prebuild, or cmake -DSDLLM_CUDA=ON, with that nvcc on PATH),`
    : '';
  return `this machine has ${found}, but the CUDA backend library was built with the ` +
    `CUDA ${runtime} runtime, which needs driver >= ${need.release} (CUDA ${cudaVersionString(need.cuda)}). ` +
    `Install NVIDIA driver ${need.release} or newer,${rebuild} or use backend: 'cpu'`;
}

/** Everything still missing for the GPU path, as actions a user can take (pure: for tests). */
export function cudaMissing(probe: CudaProbeFindings | null, backendLibrary: string | null, build: CudaBuildInfo | null,
  device: number): string[] {
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
    const tooOld = backendLibrary ? driverTooOldMessage(probe, build) : null;
    if (tooOld) missing.push(`a newer NVIDIA driver: ${tooOld}`);
    if (!probe.cublasFound) {
      missing.push('cuBLAS (libcublas.so.12 or .13): install the CUDA runtime libraries (e.g. apt-get install libcublas-12-x, or pip\'s nvidia-cublas-cu12) and put them on LD_LIBRARY_PATH, or set SDLLM_CUBLAS_LIBRARY to the file');
    }
  }
  if (!backendLibrary) missing.push('the CUDA backend library of this package (libsdllm_cuda; not in this build)');
  return missing;
}

/** sdllm_cuda.json next to the library, or null when absent or unreadable (an older build). */
export function readCudaBuildInfo(library: string | null): CudaBuildInfo | null {
  if (!library) return null;
  try {
    const info = JSON.parse(fs.readFileSync(path.join(path.dirname(library), 'sdllm_cuda.json'), 'utf8')) as CudaBuildInfo;
    return typeof info.cudaRuntime === 'number' && info.cudaRuntime > 0 ? info : null;
  } catch {
    return null;
  }
}

export function cudaStatus(device = 0): CudaStatus {
  if (cached && cached.device === device) return cached;
  const script = `process.stdout.write(JSON.stringify(require(${JSON.stringify(addonPath())}).probeCuda()))`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  let probe: CudaProbeFindings | null = null;
  let probeError: string | undefined;
  if (child.status === 0) {
    probe = JSON.parse(child.stdout) as CudaProbeFindings;
  } else {
    probeError = child.signal
      ? `the CUDA probe process was killed by ${child.signal} (a broken driver or library)`
      : `the CUDA probe process failed: ${(child.stderr || child.error?.message || '').trim()}`;
  }
  const backendLibrary = cudaBackendLibrary();
  const build = readCudaBuildInfo(backendLibrary);
  const missing = cudaMissing(probe, backendLibrary, build, device);
  const driverTooOld = probe && backendLibrary ? driverTooOldMessage(probe, build) ?? undefined : undefined;
  cached = { probe, probeError, backendLibrary, build, driverTooOld, missing, device };
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
  return decideBackend(want, cudaStatus(device));
}

/** The decision of chooseBackend from a CUDA status (pure: tests feed it fake probes). */
export function decideBackend(want: 'auto' | 'cuda', status: CudaStatus): BackendChoice {
  const device = status.device;
  if (want === 'cuda' && status.missing.length > 0) {
    throw new Error(`backend 'cuda' is not available. Missing: ${status.missing.join('; ')}. Use backend: 'cpu' or 'auto'.`);
  }
  if (status.driverTooOld) {
    const others = status.missing.filter((m) => !m.includes(status.driverTooOld as string));
    const also = others.length ? ` (the GPU path also lacks ${others.join('; ')})` : '';
    return {
      backend: 'cpu',
      reason: `auto: using the CPU backend because the NVIDIA driver is too old for the CUDA backend: ${status.driverTooOld}${also}`,
      device,
    };
  }
  if (status.missing.length > 0) {
    return { backend: 'cpu', reason: `auto: using the CPU backend because the GPU path lacks ${status.missing.join('; ')}`, device };
  }
  const probe = status.probe as CudaProbeFindings;
  const gpu = probe.devices[device];
  const driver = probe.driverRelease ? `driver ${probe.driverRelease}` : `driver for CUDA ${cudaVersionString(probe.driverVersion)}`;
  const runtime = status.build ? `, built with CUDA ${cudaVersionString(status.build.cudaRuntime)}` : '';
  const found = `${gpu.name} (device ${device}, compute ${gpu.computeCapability}), ${driver}, ${probe.cublasLibrary}, ${status.backendLibrary}${runtime}`;
  const reason = want === 'cuda'
    ? `backend: cuda was requested; found ${found}. Note: ${CUDA_UNVERIFIED_NOTE}`
    : `auto: using CUDA because the probe found ${found}. Note: ${CUDA_UNVERIFIED_NOTE}`;
  return { backend: 'cuda', reason, cudaLibrary: status.backendLibrary as string, device };
}
