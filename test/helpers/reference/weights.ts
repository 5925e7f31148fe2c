// Test-only: reads a LLaDA-layout checkpoint directory into float64 arrays, independently
// of the native loader, for the slow literal reference model.
import * as fs from 'fs';
import * as path from 'path';

export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

function bf16(bits: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32LE((bits << 16) >>> 0);
  return b.readFloatLE(0);
}

function f16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function readFile(file: string, into: Map<string, RefTensor>): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, any>;
  const base = 8 + n;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = t.data_offsets as [number, number];
    const bytes = buf.subarray(base + begin, base + end);
    const count = (t.shape as number[]).reduce((a, b) => a * b, 1);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      if (t.dtype === 'F32') data[i] = bytes.readFloatLE(4 * i);
      else if (t.dtype === 'BF16') data[i] = bf16(bytes.readUInt16LE(2 * i));
      else if (t.dtype === 'F16') data[i] = f16(bytes.readUInt16LE(2 * i));
      else throw new Error(`reference reader: dtype ${t.dtype}`);
    }
    into.set(name, { shape: t.shape, data });
  }
}

export function readCheckpoint(dir: string): { config: Record<string, any>; tensors: Map<string, RefTensor> } {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tensors = new Map<string, RefTensor>();
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const map = JSON.parse(fs.readFileSync(index, 'utf8')).weight_map as Record<string, string>;
    for (const file of new Set(Object.values(map))) readFile(path.join(dir, file), tensors);
  } else {
    readFile(path.join(dir, 'model.safetensors'), tensors);
  }
  return { config, tensors };
}
