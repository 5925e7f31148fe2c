import type { StrategyName } from '../../types';
import { dualCache } from './dual-cache';
import { prefixCache } from './prefix-cache';
import { slowfast } from './slowfast';
import type { Strategy } from './strategy';
import { streaming } from './streaming';
import { vanilla } from './vanilla';

export const strategies: Record<StrategyName, Strategy> = {
  vanilla,
  'prefix-cache': prefixCache,
  'dual-cache': dualCache,
  streaming,
  slowfast,
};
export type { Strategy } from './strategy';
