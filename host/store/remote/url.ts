/**
 * @fileoverview The form of a memory server's URL, the one copy (the CLI's `--store` and
 * `RemoteStore`'s `urls` option both check it): `ws://host:port`, `wss://host:port` or
 * `tcp://host:port` (`farmem serve --tcp-port`: the same protocol without WebSocket framing), with
 * at most a trailing slash (a server has one endpoint, so there is no path). The scheme is
 * case-insensitive, as in every URL; `store/registry.ts` picks the store kind by scheme and
 * `remote/transport.ts` the transport.
 */

/** `ws://host:port`, `wss://host:port` or `tcp://host:port`, optionally followed by `/`. */
const SERVER_URL = /^(?:wss?|tcp):\/\/[^/\s]+\/?$/i;

export function isServerUrl(url: unknown): url is string {
  return typeof url === 'string' && SERVER_URL.test(url);
}
