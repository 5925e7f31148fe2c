// `streaming-dllm inspect`: what this install loaded and what the GPU path still lacks.
import * as fs from 'fs';
import * as path from 'path';
import { chooseBackend, cudaStatus, CudaStatus, cudaVersionString, requiredDriver } from './backend';
import { addonPath, native, packageRoot } from './native';
import type { NativeRuntimeInfo } from '../types/native';

export interface InspectReport {
  version: string;
  node: string;
  platform: string;
  addon: { path: string; kind: 'prebuild' | 'local build' };
  cpu: NativeRuntimeInfo;
  cuda: CudaStatus;
  autoBackend: { backend: string; reason: string };
}

export function inspect(): InspectReport {
  const root = packageRoot();
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const file = addonPath();
  const rel = path.relative(root, file).split(path.sep);
  return {
    version: pkg.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    addon: { path: file, kind: rel[0] === 'prebuilds' ? 'prebuild' : 'local build' },
    cpu: native.runtimeInfo(),
    cuda: cudaStatus(),
    autoBackend: chooseBackend('auto'),
  };
}

function cudaLibBuild(c: CudaStatus): string {
  if (!c.backendLibrary) return '';
  if (!c.build) return ' (CUDA runtime version unknown: no sdllm_cuda.json next to it, the driver is not checked)';
  const need = requiredDriver(c.build.cudaRuntime);
  return ` (built with CUDA ${cudaVersionString(c.build.cudaRuntime)}${need ? `, needs NVIDIA driver >= ${need.release}` : ''})`;
}

const KERNEL_NAMES: Record<string, string> = {
  avx512: 'AVX-512 GEMM, AVX2/FMA elsewhere',
  'avx2-fma': 'AVX2/FMA kernels',
  scalar: 'scalar kernels',
};

export function formatInspect(r: InspectReport): string {
  const gb = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const p = r.cuda.probe;
  const lines = [
    `streaming-dllm ${r.version} on ${r.platform}, Node ${r.node}`,
    `addon:    ${r.addon.kind} (${r.addon.path})`,
    `cpu:      ${KERNEL_NAMES[r.cpu.kernels] ?? r.cpu.kernels} (avx2 ${r.cpu.avx2}, fma ${r.cpu.fma}, avx512 ${r.cpu.avx512}), ${r.cpu.threads} thread${r.cpu.threads === 1 ? "" : "s"} (${r.cpu.threadsReason})`,
    p?.driverFound
      ? `cuda:     driver ${p.driverRelease ? `${p.driverRelease}, ` : ''}supports CUDA ${cudaVersionString(p.driverVersion)} (${p.driverLibrary}), ${p.devices.length} device(s)`
      : `cuda:     no CUDA driver found${p?.driverError ? ` (${p.driverError})` : r.cuda.probeError ? ` (${r.cuda.probeError})` : ''}`,
    ...(p?.devices ?? []).map((d, i) => `          [${i}] ${d.name}, ${gb(d.totalMemory)}, compute ${d.computeCapability}`),
    `cublas:   ${p?.cublasFound ? p.cublasLibrary : 'not found'}`,
    `cuda lib: ${r.cuda.backendLibrary ?? 'not in this build'}${cudaLibBuild(r.cuda)}`,
    ...(r.cuda.driverTooOld ? [`driver:   TOO OLD for this CUDA library: ${r.cuda.driverTooOld}`] : []),
    `backend:  ${r.autoBackend.backend} (${r.autoBackend.reason})`,
  ];
  if (r.cuda.missing.length) {
    lines.push('', 'To use the GPU, provide:', ...r.cuda.missing.map((m) => `  - ${m}`));
  }
  return lines.join('\n');
}
