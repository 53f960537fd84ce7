/**
 * @fileoverview The farmem memory server: `MemoryServer` (ws + slab arena) and its diagnostics
 * channel. Started by `farmem serve` (host/cli/cmd/serve.ts) or in-process by tests and benches.
 */
export { MemoryServer, serverErrorChannel, type MemoryServerOptions, type ServerErrorEvent } from './server.js';
