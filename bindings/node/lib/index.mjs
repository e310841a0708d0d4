// ESM entry: the same module instance as require('findity-auth') (one worker pool, one logger).
import cjs from './index.cjs';

export const {
  getToken,
  getUserToken,
  cachedToken,
  invalidateToken,
  invalidate,
  clearCache,
  tokenExpiresIn,
  setOption,
  stats,
  setLogger,
  version,
  libraryPath,
  FindityError,
  FindityAuth,
} = cjs;

export default cjs;
