// An install without an addon (no prebuild for the platform, and no local build because npm
// skipped or failed the install script) must say what to do, not only what node-gyp-build
// looked for: lib/native.ts wraps node-gyp-build's error.
import * as path from 'path';

const nodeGypBuildMessage =
  'No native build was found for platform=sunos arch=sparc runtime=node abi=115 uv=1 libc=glibc node=20.20.2\n    loaded from: /x\n';

describe('a missing addon', () => {
  afterEach(() => {
    jest.dontMock('node-gyp-build');
    jest.resetModules();
  });

  test('loading the package throws an error that names the platform and the fix, with the original as cause', () => {
    jest.isolateModules(() => {
      jest.doMock('node-gyp-build', () => ({
        resolve: () => {
          throw new Error(nodeGypBuildMessage);
        },
      }));
      let thrown: unknown;
      try {
        require('../lib/native');
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(Error);
      const err = thrown as Error & { cause?: Error };
      expect(err.message).toContain(`no native addon for ${process.platform}-${process.arch}`);
      expect(err.message).toContain('npm rebuild streaming-dllm');
      expect(err.message).toContain('C++17 compiler and CMake');
      expect(err.message).toContain(path.join(path.resolve(__dirname, '..'), 'prebuilds'));
      // node-gyp-build's first line is kept, its trailing lines are not repeated.
      expect(err.message).toContain('node-gyp-build: No native build was found for platform=sunos arch=sparc');
      expect(err.message).not.toContain('loaded from');
      expect(err.cause?.message).toBe(nodeGypBuildMessage);
    });
  });

  test('with a binary present the path is node-gyp-build\'s, unchanged', () => {
    jest.isolateModules(() => {
      const real = jest.requireActual('node-gyp-build') as { resolve(dir: string): string };
      const { addonPath, packageRoot } = require('../lib/native') as typeof import('../lib/native');
      expect(addonPath()).toBe(real.resolve(packageRoot()));
    });
  });
});
