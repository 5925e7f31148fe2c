// Backend choice from fake CUDA probes (lib/backend.ts): the driver-version check against
// the runtime the CUDA library was built with, the messages of `auto` and `cuda`, and the
// library's build sidecar. No GPU, driver or addon needed.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CUDA_DRIVER_REQUIREMENTS,
  CudaBuildInfo,
  CudaProbeFindings,
  CudaStatus,
  cudaMissing,
  decideBackend,
  driverTooOldMessage,
  readCudaBuildInfo,
  requiredDriver,
} from '../lib/backend';

const LIB = '/opt/sdllm/libsdllm_cuda.so';

function probe(over: Partial<CudaProbeFindings> = {}): CudaProbeFindings {
  return {
    driverFound: true,
    driverLibrary: 'libcuda.so.1',
    driverError: '',
    driverVersion: 13000,
    driverRelease: '580.65.06',
    devices: [{ name: 'NVIDIA H100 80GB HBM3', totalMemory: 85e9, computeCapability: '9.0' }],
    cublasFound: true,
    cublasLibrary: 'libcublas.so.13',
    cublasError: '',
    ...over,
  };
}

function status(p: CudaProbeFindings | null, build: CudaBuildInfo | null, lib: string | null = LIB, device = 0): CudaStatus {
  const missing = cudaMissing(p, lib, build, device);
  const driverTooOld = p && lib ? driverTooOldMessage(p, build) ?? undefined : undefined;
  return { probe: p, backendLibrary: lib, build, driverTooOld, missing, device };
}

const CUDA13: CudaBuildInfo = { cudaRuntime: 13000, toolkit: '13.0.88' };
const CUDA128: CudaBuildInfo = { cudaRuntime: 12080, toolkit: '12.8.93' };

describe('driver requirements table', () => {
  test('CUDA 12.x needs R525.60.13 (minor-version compatibility), 13.x needs R580', () => {
    expect(requiredDriver(12080)).toEqual({ cuda: 12000, release: '525.60.13' });
    expect(requiredDriver(12000)).toEqual({ cuda: 12000, release: '525.60.13' });
    expect(requiredDriver(13000)).toEqual({ cuda: 13000, release: '580' });
    expect(requiredDriver(13020)).toEqual({ cuda: 13000, release: '580' });
    expect(requiredDriver(99000)).toBeNull();
    expect(CUDA_DRIVER_REQUIREMENTS.map((r) => r.major)).toEqual([11, 12, 13]);
  });
});

describe('driverTooOldMessage', () => {
  test('a CUDA 13 library on an R535 driver (CUDA 12.2): names both versions and what to install', () => {
    const m = driverTooOldMessage(probe({ driverVersion: 12020, driverRelease: '535.104.05' }), CUDA13) as string;
    expect(m).toContain('driver 535.104.05');
    expect(m).toContain('supports CUDA 12.2');
    expect(m).toContain('CUDA 13.0 runtime');
    expect(m).toContain('needs driver >= 580');
    expect(m).toContain('Install NVIDIA driver 580 or newer');
    expect(m).toContain('CUDA 12.x toolkit');  // the build that would run on this driver
    expect(m).toContain('>= 525.60.13');
    expect(m).toContain("backend: 'cpu'");
  });

  test('without the release string (older addon) it still names the CUDA version the driver supports', () => {
    const m = driverTooOldMessage(probe({ driverVersion: 12040, driverRelease: undefined }), CUDA13) as string;
    expect(m).toContain('a driver that supports CUDA 12.4');
    expect(m).toContain('needs driver >= 580');
  });

  test('compatible combinations give null', () => {
    expect(driverTooOldMessage(probe({ driverVersion: 13000 }), CUDA13)).toBeNull();
    expect(driverTooOldMessage(probe({ driverVersion: 13020 }), CUDA13)).toBeNull();
    // minor-version compatibility: a 12.8 runtime on a 12.0 (R525) driver
    expect(driverTooOldMessage(probe({ driverVersion: 12000, driverRelease: '525.60.13' }), CUDA128)).toBeNull();
    expect(driverTooOldMessage(probe({ driverVersion: 12020 }), CUDA128)).toBeNull();
  });

  test('a CUDA 12.8 library on an R470 driver (CUDA 11.4) needs R525.60.13, and no older toolkit is offered beyond 11.x', () => {
    const m = driverTooOldMessage(probe({ driverVersion: 11040, driverRelease: '470.256.02' }), CUDA128) as string;
    expect(m).toContain('driver 470.256.02');
    expect(m).toContain('needs driver >= 525.60.13');
    expect(m).toContain('CUDA 11.x toolkit');
  });

  test('unknown versions are not judged', () => {
    expect(driverTooOldMessage(probe({ driverVersion: 12020 }), null)).toBeNull();  // no sidecar
    expect(driverTooOldMessage(probe({ driverVersion: 0 }), CUDA13)).toBeNull();
    expect(driverTooOldMessage(probe({ driverFound: false, driverVersion: 0 }), CUDA13)).toBeNull();
  });
});

describe('decideBackend', () => {
  test("auto with a too-old driver falls back to the CPU and says why, plainly", () => {
    const s = status(probe({ driverVersion: 12020, driverRelease: '535.104.05' }), CUDA13);
    const c = decideBackend('auto', s);
    expect(c.backend).toBe('cpu');
    expect(c.reason).toMatch(/^auto: using the CPU backend because the NVIDIA driver is too old for the CUDA backend: /);
    expect(c.reason).toContain('535.104.05');
    expect(c.reason).toContain('needs driver >= 580');
    expect(c.reason).not.toContain('also lacks');
  });

  test("auto with a too-old driver and no cuBLAS lists both", () => {
    const s = status(probe({ driverVersion: 12020, driverRelease: '535.104.05', cublasFound: false }), CUDA13);
    const c = decideBackend('auto', s);
    expect(c.backend).toBe('cpu');
    expect(c.reason).toContain('needs driver >= 580');
    expect(c.reason).toContain('also lacks cuBLAS');
  });

  test("cuda with a too-old driver throws the same explanation", () => {
    const s = status(probe({ driverVersion: 12020, driverRelease: '535.104.05' }), CUDA13);
    expect(() => decideBackend('cuda', s)).toThrow(/backend 'cuda' is not available\. Missing: a newer NVIDIA driver: this machine has driver 535\.104\.05.*needs driver >= 580/);
  });

  test('a matching driver chooses CUDA and the reason names the driver and the runtime', () => {
    const c = decideBackend('auto', status(probe(), CUDA13));
    expect(c.backend).toBe('cuda');
    expect(c.cudaLibrary).toBe(LIB);
    expect(c.reason).toContain('NVIDIA H100 80GB HBM3');
    expect(c.reason).toContain('driver 580.65.06');
    expect(c.reason).toContain('built with CUDA 13.0');
    expect(decideBackend('cuda', status(probe(), CUDA13)).reason).toMatch(/^backend: cuda was requested/);
  });

  test('a CUDA 12.8 build on an R535 driver is fine (the release workflow build)', () => {
    const c = decideBackend('auto', status(probe({ driverVersion: 12020, driverRelease: '535.104.05', cublasLibrary: 'libcublas.so.12' }), CUDA128));
    expect(c.backend).toBe('cuda');
  });

  test('other missing pieces keep their messages; no library means no driver judgement', () => {
    const noDriver = decideBackend('auto', status(probe({ driverFound: false, driverVersion: 0, driverError: 'libcuda.so.1: cannot open', devices: [] }), CUDA13));
    expect(noDriver.backend).toBe('cpu');
    expect(noDriver.reason).toContain('the NVIDIA driver (libcuda): libcuda.so.1: cannot open');
    const noLib = status(probe({ driverVersion: 12020 }), null, null);
    expect(noLib.driverTooOld).toBeUndefined();
    expect(decideBackend('auto', noLib).reason).toContain('libsdllm_cuda; not in this build');
    expect(() => decideBackend('cuda', status(probe(), CUDA13, LIB, 3))).toThrow(/CUDA device 3: the driver reports 1 device/);
    expect(decideBackend('auto', status(null, CUDA13)).reason).toContain('the probe failed');
  });
});

describe('readCudaBuildInfo', () => {
  test('reads sdllm_cuda.json next to the library; absent or malformed gives null', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sdllm-buildinfo-'));
    try {
      const lib = path.join(dir, 'libsdllm_cuda.so');
      expect(readCudaBuildInfo(lib)).toBeNull();
      fs.writeFileSync(path.join(dir, 'sdllm_cuda.json'), '{"cudaRuntime": 13000, "toolkit": "13.0.88", "runtimeLinkage": "static"}\n');
      expect(readCudaBuildInfo(lib)).toEqual({ cudaRuntime: 13000, toolkit: '13.0.88', runtimeLinkage: 'static' });
      fs.writeFileSync(path.join(dir, 'sdllm_cuda.json'), '{"cudaRuntime": "13.0"}');
      expect(readCudaBuildInfo(lib)).toBeNull();
      fs.writeFileSync(path.join(dir, 'sdllm_cuda.json'), 'not json');
      expect(readCudaBuildInfo(lib)).toBeNull();
      expect(readCudaBuildInfo(null)).toBeNull();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
