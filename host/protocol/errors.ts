/**
 * @fileoverview Maps wire status codes to farmem's typed errors, so a client turns an ERROR frame
 * into something a caller can act on: `AuthError` (fix the token), `ServerOutOfMemoryError` (add a
 * server or capacity), or a `ProtocolError` whose code names the status (`FM_ERR_PROTOCOL_<NAME>`).
 * The wire status is kept under `ProtocolError.wireStatus`.
 */
import { AuthError, ProtocolError, ServerOutOfMemoryError } from '../errors.js';
import { Status, STATUS_NAMES } from './messages.js';

/** Stable error code for a wire status. */
export function statusCode(status: number): string {
  switch (status) {
    case Status.BAD_TOKEN: return 'FM_ERR_AUTH';
    case Status.OUT_OF_CAPACITY: return 'FM_ERR_SERVER_OUT_OF_MEMORY';
    default: return `FM_ERR_PROTOCOL_${STATUS_NAMES[status] ?? `STATUS_${status}`}`;
  }
}

/** Builds the typed error for an ERROR reply from `server` (a URL, for the message). */
export function errorFromStatus(status: number, message: string, server: string): ProtocolError {
  const name = STATUS_NAMES[status] ?? `status ${status}`;
  switch (status) {
    case Status.BAD_TOKEN:
      return new AuthError(statusCode(status), `${server} refused the token: ${message} (check --token / the token option)`, status);
    case Status.OUT_OF_CAPACITY:
      return new ServerOutOfMemoryError(statusCode(status), `${server} is out of capacity: ${message} (add servers or start them with a larger --capacity)`, status);
    default:
      return new ProtocolError(statusCode(status), `${server} answered ${name}: ${message}`, status);
  }
}
