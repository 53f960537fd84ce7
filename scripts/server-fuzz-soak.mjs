#!/usr/bin/env node
// Longer protocol fuzz soak against a live farmem serve: test/server-fuzz.test.ts with more frames
// and several seeds. Usage: node scripts/server-fuzz-soak.mjs [--frames 200000] [--seeds 5]
import { spawnSync } from 'node:child_process';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const frames = arg('frames', 200_000);
const seeds = arg('seeds', 5);
for (let s = 1; s <= seeds; s++) {
  const seed = 0xfa57 + s;
  console.log(`seed ${seed}: ${frames} frames`);
  const r = spawnSync('npx', ['vitest', 'run', 'test/server-fuzz.test.ts', '--testTimeout', String(Math.max(600_000, frames * 30))], {
    stdio: 'inherit', env: { ...process.env, FARMEM_SERVER_FUZZ_FRAMES: String(frames), FARMEM_SERVER_FUZZ_SEED: String(seed) },
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
