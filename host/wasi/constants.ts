/**
 * @fileoverview WASI preview1 (`wasi_snapshot_preview1`) ABI constants: errno values, file types,
 * rights, flags, clock ids, struct sizes and offsets, and the list of functions farmem provides.
 * Values are those of the preview1 witx (`typenames.witx`); wasi-libc's `errno` numbers are the
 * same numbers, so a C program prints exactly these.
 */

/**
 * Errno names in preview1 order: the errno value is the index. `ERRNO.NOENT === 44`.
 * Node's `err.code` is `'E' + name` for all of them, which is how host errors are mapped.
 */
export const ERRNO_NAMES = [
  'SUCCESS', '2BIG', 'ACCES', 'ADDRINUSE', 'ADDRNOTAVAIL', 'AFNOSUPPORT', 'AGAIN', 'ALREADY',
  'BADF', 'BADMSG', 'BUSY', 'CANCELED', 'CHILD', 'CONNABORTED', 'CONNREFUSED', 'CONNRESET',
  'DEADLK', 'DESTADDRREQ', 'DOM', 'DQUOT', 'EXIST', 'FAULT', 'FBIG', 'HOSTUNREACH', 'IDRM', 'ILSEQ',
  'INPROGRESS', 'INTR', 'INVAL', 'IO', 'ISCONN', 'ISDIR', 'LOOP', 'MFILE', 'MLINK', 'MSGSIZE',
  'MULTIHOP', 'NAMETOOLONG', 'NETDOWN', 'NETRESET', 'NETUNREACH', 'NFILE', 'NOBUFS', 'NODEV',
  'NOENT', 'NOEXEC', 'NOLCK', 'NOLINK', 'NOMEM', 'NOMSG', 'NOPROTOOPT', 'NOSPC', 'NOSYS',
  'NOTCONN', 'NOTDIR', 'NOTEMPTY', 'NOTRECOVERABLE', 'NOTSOCK', 'NOTSUP', 'NOTTY', 'NXIO',
  'OVERFLOW', 'OWNERDEAD', 'PERM', 'PIPE', 'PROTO', 'PROTONOSUPPORT', 'PROTOTYPE', 'RANGE', 'ROFS',
  'SPIPE', 'SRCH', 'STALE', 'TIMEDOUT', 'TXTBSY', 'XDEV', 'NOTCAPABLE',
] as const;

export type ErrnoName = (typeof ERRNO_NAMES)[number];

/** `ERRNO.X` is the preview1 errno value of `X` (e.g. `ERRNO.NOTCAPABLE === 76`). */
export const ERRNO = Object.freeze(
  Object.fromEntries(ERRNO_NAMES.map((name, i) => [name, i])) as { [K in ErrnoName]: number },
);

/** Node error codes that are not `'E' + preview1 name`. */
const NODE_ERRNO_ALIASES: Record<string, number> = {
  EOPNOTSUPP: ERRNO.NOTSUP,
  EWOULDBLOCK: ERRNO.AGAIN,
  ENOTSUP: ERRNO.NOTSUP,
  EDEADLOCK: ERRNO.DEADLK,
};

const NODE_ERRNO = new Map<string, number>([
  ...ERRNO_NAMES.slice(1).map((name, i): [string, number] => ['E' + name, i + 1]),
  ...Object.entries(NODE_ERRNO_ALIASES),
]);

/** Maps a Node system error code (`'ENOENT'`) to a preview1 errno; unknown codes become `IO`. */
export function errnoFromNodeCode(code: string): number {
  return NODE_ERRNO.get(code) ?? ERRNO.IO;
}

/** `filetype` (u8). */
export const FILETYPE = {
  UNKNOWN: 0, BLOCK_DEVICE: 1, CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4,
  SOCKET_DGRAM: 5, SOCKET_STREAM: 6, SYMBOLIC_LINK: 7,
} as const;

/** `fdflags` (u16). */
export const FDFLAGS = { APPEND: 1, DSYNC: 2, NONBLOCK: 4, RSYNC: 8, SYNC: 16 } as const;
/** `oflags` (u16) of `path_open`. */
export const OFLAGS = { CREAT: 1, DIRECTORY: 2, EXCL: 4, TRUNC: 8 } as const;
/** `lookupflags` (u32). */
export const LOOKUP_SYMLINK_FOLLOW = 1;
/** `fstflags` (u16) of the `*_set_times` calls. */
export const FSTFLAGS = { ATIM: 1, ATIM_NOW: 2, MTIM: 4, MTIM_NOW: 8 } as const;
/** `whence` (u8). */
export const WHENCE = { SET: 0, CUR: 1, END: 2 } as const;
/** `clockid` (u32). */
export const CLOCKID = { REALTIME: 0, MONOTONIC: 1, PROCESS_CPUTIME_ID: 2, THREAD_CPUTIME_ID: 3 } as const;
/** `eventtype` (u8) of poll_oneoff subscriptions and events. */
export const EVENTTYPE = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
/** `eventrwflags` (u16) of an fd event: the peer closed its end (wasi-libc's poll() adds POLLHUP). */
export const EVENTRWFLAGS_FD_READWRITE_HANGUP = 1;
/** `subclockflags` (u16). */
export const SUBCLOCK_ABSTIME = 1;
/** `preopentype` (u8). */
export const PREOPENTYPE_DIR = 0;
/** Largest `advice` value (`NOREUSE`); `fd_advise` accepts 0..5. */
export const ADVICE_MAX = 5;

/** `rights` (u64) bits. */
export const RIGHTS = {
  FD_DATASYNC: 1n << 0n, FD_READ: 1n << 1n, FD_SEEK: 1n << 2n, FD_FDSTAT_SET_FLAGS: 1n << 3n,
  FD_SYNC: 1n << 4n, FD_TELL: 1n << 5n, FD_WRITE: 1n << 6n, FD_ADVISE: 1n << 7n,
  FD_ALLOCATE: 1n << 8n, PATH_CREATE_DIRECTORY: 1n << 9n, PATH_CREATE_FILE: 1n << 10n,
  PATH_LINK_SOURCE: 1n << 11n, PATH_LINK_TARGET: 1n << 12n, PATH_OPEN: 1n << 13n,
  FD_READDIR: 1n << 14n, PATH_READLINK: 1n << 15n, PATH_RENAME_SOURCE: 1n << 16n,
  PATH_RENAME_TARGET: 1n << 17n, PATH_FILESTAT_GET: 1n << 18n, PATH_FILESTAT_SET_SIZE: 1n << 19n,
  PATH_FILESTAT_SET_TIMES: 1n << 20n, FD_FILESTAT_GET: 1n << 21n, FD_FILESTAT_SET_SIZE: 1n << 22n,
  FD_FILESTAT_SET_TIMES: 1n << 23n, PATH_SYMLINK: 1n << 24n, PATH_REMOVE_DIRECTORY: 1n << 25n,
  PATH_UNLINK_FILE: 1n << 26n, POLL_FD_READWRITE: 1n << 27n, SOCK_SHUTDOWN: 1n << 28n,
  SOCK_ACCEPT: 1n << 29n,
} as const;

export const RIGHTS_ALL = (1n << 30n) - 1n;

/** Rights that make sense on a regular file. */
export const RIGHTS_FILE_BASE =
  RIGHTS.FD_DATASYNC | RIGHTS.FD_READ | RIGHTS.FD_SEEK | RIGHTS.FD_FDSTAT_SET_FLAGS |
  RIGHTS.FD_SYNC | RIGHTS.FD_TELL | RIGHTS.FD_WRITE | RIGHTS.FD_ADVISE | RIGHTS.FD_ALLOCATE |
  RIGHTS.FD_FILESTAT_GET | RIGHTS.FD_FILESTAT_SET_SIZE | RIGHTS.FD_FILESTAT_SET_TIMES |
  RIGHTS.POLL_FD_READWRITE;

/** Rights that make sense on a directory (everything but reading/writing/seeking bytes). */
export const RIGHTS_DIR_BASE =
  RIGHTS.FD_FDSTAT_SET_FLAGS | RIGHTS.FD_SYNC | RIGHTS.FD_DATASYNC | RIGHTS.FD_ADVISE |
  RIGHTS.PATH_CREATE_DIRECTORY | RIGHTS.PATH_CREATE_FILE | RIGHTS.PATH_LINK_SOURCE |
  RIGHTS.PATH_LINK_TARGET | RIGHTS.PATH_OPEN | RIGHTS.FD_READDIR | RIGHTS.PATH_READLINK |
  RIGHTS.PATH_RENAME_SOURCE | RIGHTS.PATH_RENAME_TARGET | RIGHTS.PATH_FILESTAT_GET |
  RIGHTS.PATH_FILESTAT_SET_SIZE | RIGHTS.PATH_FILESTAT_SET_TIMES | RIGHTS.FD_FILESTAT_GET |
  RIGHTS.FD_FILESTAT_SET_TIMES | RIGHTS.PATH_SYMLINK | RIGHTS.PATH_REMOVE_DIRECTORY |
  RIGHTS.PATH_UNLINK_FILE;

/** Rights of a stream (terminal, pipe, in-process sink). No SEEK/TELL, so `isatty()` works. */
export const RIGHTS_STREAM_BASE =
  RIGHTS.FD_READ | RIGHTS.FD_WRITE | RIGHTS.FD_FDSTAT_SET_FLAGS | RIGHTS.FD_FILESTAT_GET |
  RIGHTS.POLL_FD_READWRITE;

/** Rights that need the host file opened for reading / writing (wasi-libc derives them from O_*). */
export const RIGHTS_NEED_READ = RIGHTS.FD_READ | RIGHTS.FD_READDIR;
export const RIGHTS_NEED_WRITE =
  RIGHTS.FD_DATASYNC | RIGHTS.FD_WRITE | RIGHTS.FD_ALLOCATE | RIGHTS.FD_FILESTAT_SET_SIZE;

/*
 * Struct layouts (little-endian, offsets in bytes):
 *
 *  iovec / ciovec (8)      buf u32 @0 · buf_len u32 @4
 *  prestat (8)             tag u8 @0 · pr_name_len u32 @4
 *  fdstat (24)             fs_filetype u8 @0 · fs_flags u16 @2 · fs_rights_base u64 @8 ·
 *                          fs_rights_inheriting u64 @16
 *  filestat (64)           dev u64 @0 · ino u64 @8 · filetype u8 @16 · nlink u64 @24 · size u64 @32 ·
 *                          atim u64 @40 · mtim u64 @48 · ctim u64 @56
 *  dirent (24 + name)      d_next u64 @0 · d_ino u64 @8 · d_namlen u32 @16 · d_type u8 @20 · name @24
 *  subscription (48)       userdata u64 @0 · tag u8 @8 · clock: id u32 @16, timeout u64 @24,
 *                          precision u64 @32, flags u16 @40 · fd_read/fd_write: fd u32 @16
 *  event (32)              userdata u64 @0 · error u16 @8 · type u8 @10 · nbytes u64 @16 · flags u16 @24
 */
export const IOVEC_SIZE = 8;
export const PRESTAT_SIZE = 8;
export const FDSTAT_SIZE = 24;
export const FILESTAT_SIZE = 64;
export const DIRENT_HEADER_SIZE = 24;
export const SUBSCRIPTION_SIZE = 48;
export const EVENT_SIZE = 32;

/** The import module name of WASI preview1. */
export const WASI_MODULE = 'wasi_snapshot_preview1';

/**
 * Every function of WASI preview1. `Wasi.imports()` provides exactly these, so a runtime can tell
 * a module that imports anything else which import is missing (`findMissingImports`).
 */
export const WASI_FUNCTIONS = [
  'args_get', 'args_sizes_get', 'environ_get', 'environ_sizes_get', 'clock_res_get',
  'clock_time_get', 'fd_advise', 'fd_allocate', 'fd_close', 'fd_datasync', 'fd_fdstat_get',
  'fd_fdstat_set_flags', 'fd_fdstat_set_rights', 'fd_filestat_get', 'fd_filestat_set_size',
  'fd_filestat_set_times', 'fd_pread', 'fd_prestat_get', 'fd_prestat_dir_name', 'fd_pwrite',
  'fd_read', 'fd_readdir', 'fd_renumber', 'fd_seek', 'fd_sync', 'fd_tell', 'fd_write',
  'path_create_directory', 'path_filestat_get', 'path_filestat_set_times', 'path_link',
  'path_open', 'path_readlink', 'path_remove_directory', 'path_rename', 'path_symlink',
  'path_unlink_file', 'poll_oneoff', 'proc_exit', 'proc_raise', 'sched_yield', 'random_get',
  'sock_accept', 'sock_recv', 'sock_send', 'sock_shutdown',
] as const;

export type WasiFunctionName = (typeof WASI_FUNCTIONS)[number];
