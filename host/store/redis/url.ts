/**
 * @fileoverview Parses the Redis forms of `--store`:
 *
 *   redis://[user:pass@]host[:port][/db]            one server (db 0 … 15 by default config)
 *   rediss://[user:pass@]host[:port][/db]           the same over TLS
 *   redis+cluster://[user:pass@]host:port,host:port,...   seed nodes of a cluster (the rest is discovered)
 *   rediss+cluster://...                            a cluster over TLS
 *
 * `user` and `pass` are percent-decoded; `:pass@` alone authenticates the default user (requirepass).
 * IPv6 hosts go in brackets (`redis://[::1]:6379`). The port defaults to 6379. A cluster has no db.
 * `displayName` is the URL without its password, for stats and error messages.
 */
import { OptionError } from '../../errors.js';

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisEndpoint {
  readonly cluster: boolean;
  readonly tls: boolean;
  readonly nodes: readonly RedisNode[];
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  /** The URL with the password left out. */
  readonly displayName: string;
}

const SCHEMES: Record<string, { cluster: boolean; tls: boolean }> = {
  'redis:': { cluster: false, tls: false },
  'rediss:': { cluster: false, tls: true },
  'redis+cluster:': { cluster: true, tls: false },
  'rediss+cluster:': { cluster: true, tls: true },
};

const FORMS = 'redis://[user:pass@]host:port[/db], rediss://..., or redis+cluster://host:port,host:port,...';

/** Is `text` one of the Redis `--store` forms (by its scheme)? */
export function isRedisUrl(text: string): boolean {
  const colon = text.indexOf(':');
  return colon > 0 && text.slice(colon, colon + 3) === '://' && text.slice(0, colon + 1).toLowerCase() in SCHEMES;
}

function decode(part: string, what: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new OptionError(`bad ${what} encoding in Redis URL "${url}"`);
  }
}

function parseNode(text: string, url: string): RedisNode {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new OptionError(`bad host:port "${text}" in Redis URL "${url}"; expected ${FORMS}`);
  const port = m[2] === undefined ? 6379 : Number(m[2]);
  if (!(port >= 1 && port <= 65535)) throw new OptionError(`port must be 1 to 65535 in Redis URL "${url}", got ${m[2]}`);
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

export function parseRedisUrl(url: string): RedisEndpoint {
  const sep = url.indexOf('://');
  const scheme = sep > 0 ? SCHEMES[url.slice(0, sep + 1).toLowerCase()] : undefined;
  if (!scheme) throw new OptionError(`not a Redis URL: "${url}"; expected ${FORMS}`);
  let rest = url.slice(sep + 3);
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (user) username = decode(user, 'user name', url);
    if (colon >= 0) password = decode(userinfo.slice(colon + 1), 'password', url);
  }
  let db = 0;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const path = rest.slice(slash + 1);
    rest = rest.slice(0, slash);
    if (path !== '') {
      if (scheme.cluster) throw new OptionError(`a Redis cluster has no database number; drop "/${path}" from "${url}"`);
      if (!/^\d{1,5}$/.test(path)) throw new OptionError(`database must be a number in Redis URL "${url}", got "/${path}"`);
      db = Number(path);
    }
  }
  if (rest.includes('?')) throw new OptionError(`Redis URL "${url}" takes no query parameters; use --namespace and --keep`);
  const hosts = rest.split(',').filter((h) => h !== '');
  if (hosts.length === 0) throw new OptionError(`Redis URL "${url}" names no host; expected ${FORMS}`);
  if (hosts.length > 1 && !scheme.cluster) {
    throw new OptionError(`Redis URL "${url}" names several hosts; a cluster is redis+cluster://host:port,host:port,...`);
  }
  const nodes = hosts.map((h) => parseNode(h, url));
  const shown = nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
  const who = username !== undefined ? `${encodeURIComponent(username)}@` : '';
  const displayName = `${url.slice(0, sep).toLowerCase()}://${who}${shown}${db !== 0 ? `/${db}` : ''}`;
  return {
    cluster: scheme.cluster,
    tls: scheme.tls,
    nodes,
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    db,
    displayName,
  };
}
