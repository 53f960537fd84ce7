/**
 * @fileoverview `farmem serve`: runs a memory server until SIGINT, or until a drain (SIGTERM,
 * SIGUSR2 or an admin DRAIN request) has moved every page away or hit `--drain-timeout`. Prints exactly one line,
 * `farmem serve listening on ws://HOST:PORT` (with `--tcp-port`: `... ws://HOST:PORT and tcp://HOST:PORT`),
 * to stdout once listening (tests start it with `--port 0` and parse the ports from that line). Errors go to the diagnostics channel
 * `farmem:server:error`; with NODE_DEBUG=farmem they are printed to stderr.
 */
import type { Command } from 'commander';
import { OptionError } from '../../errors.js';
import { MemoryServer } from '../../server/index.js';
import { action } from '../action.js';
import { parseSize } from '../sizes.js';

interface ServeFlags {
  port: string;
  tcpPort?: string;
  host: string;
  capacity: string;
  token?: string;
  adminToken?: string;
  maxPayload?: string;
  maxConnections?: string;
  drainTimeout: string;
}

function parseDrainTimeout(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) throw new OptionError(`--drain-timeout must be a positive number of milliseconds, got "${text}"`);
  return n;
}

function parsePort(text: string, flag = '--port'): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new OptionError(`${flag} must be an integer between 0 and 65535, got "${text}"`);
  return n;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('Run a memory server that holds pages for farmem clients (binary protocol over ws, and plain TCP with --tcp-port).')
    .addHelpText('after', `
Examples:
  farmem serve --port 7070 --capacity 8GiB --token secret
  FARMEM_TOKEN=secret farmem serve --port 0        # prints the URL it listens on
  kill -USR2 <pid>                                  # drain: clients move their pages away, then it exits
  farmem run prog.wasm --store ws://127.0.0.1:7070 --token secret --local 25%
  farmem serve --port 7070 --tcp-port 7071 --token secret    # also tcp:// (no WebSocket framing)
  farmem run prog.wasm --store tcp://127.0.0.1:7071 --token secret --local 25%`)
    .option('--port <port>', 'TCP port to listen on; 0 picks a free one', '7070')
    .option('--tcp-port <port>', 'also listen for tcp:// clients (same protocol, no WebSocket framing) on this port; 0 picks a free one')
    .option('--host <host>', 'interface to listen on (ws and tcp)', '127.0.0.1')
    .option('--capacity <size>', 'bytes of page data to hold, e.g. 4GiB (allocated lazily)', '4GiB')
    .option('--token <token>', 'shared secret clients must present (default: $FARMEM_TOKEN)')
    .option('--admin-token <token>', 'second secret: its holder sees every namespace in STATS (default: $FARMEM_ADMIN_TOKEN)')
    .option('--max-payload <size>', 'largest frame/message in bytes (default 16MiB + 4KiB)')
    .option('--max-connections <n>', 'most simultaneous connections', '1024')
    .option('--drain-timeout <ms>', 'SIGTERM, SIGUSR2 or an admin DRAIN: how long to wait for clients to move their pages away before exiting', '60000')
    .action(action('serve', async (flags: ServeFlags) => {
      const token = flags.token ?? process.env.FARMEM_TOKEN;
      if (!token) throw new OptionError('--token (or $FARMEM_TOKEN) is required: clients must present it in HELLO');
      const adminToken = flags.adminToken ?? process.env.FARMEM_ADMIN_TOKEN;
      const maxConnections = Number(flags.maxConnections);
      if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) {
        throw new OptionError(`--max-connections must be a positive integer, got "${flags.maxConnections}"`);
      }
      const server = new MemoryServer({
        host: flags.host,
        port: parsePort(flags.port),
        ...(flags.tcpPort !== undefined ? { tcpPort: parsePort(flags.tcpPort, '--tcp-port') } : {}),
        capacity: parseSize(flags.capacity, '--capacity'),
        token,
        ...(adminToken ? { adminToken } : {}),
        maxConnections,
        drainTimeoutMs: parseDrainTimeout(flags.drainTimeout),
        ...(flags.maxPayload ? { maxPayload: parseSize(flags.maxPayload, '--max-payload') } : {}),
      });
      await server.listen();
      process.stdout.write(`farmem serve listening on ${server.url}${server.tcpUrl !== null ? ` and ${server.tcpUrl}` : ''}\n`);
      // SIGINT stops at once; SIGTERM and SIGUSR2 drain first (as does an admin's DRAIN request):
      // clients move their pages to other servers, and the server exits once it holds none (or at
      // the drain deadline).
      const drain = () => { void server.drain(); };
      let interrupt!: () => void;
      const interrupted = new Promise<void>((resolve) => { interrupt = resolve; });
      process.on('SIGTERM', drain);
      process.on('SIGUSR2', drain);
      process.once('SIGINT', interrupt);
      await Promise.race([server.drained, interrupted]);
      process.off('SIGTERM', drain);
      process.off('SIGUSR2', drain);
      process.off('SIGINT', interrupt);
      await server.close();
    }));
}
