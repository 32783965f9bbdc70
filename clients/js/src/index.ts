/**
 * @bookcast/client: verified order books from a bookcast gateway, in browsers and Node.js.
 * See README.md and docs/protocol.md.
 */

export {
  BookClient,
  ClientClosedError,
  ClientConnectError,
  ClientError,
  NotConnectedError,
  SubscriptionRefusedError,
  TimeoutError,
  CLOSE_GOING_AWAY,
  CLOSE_NORMAL,
  CLOSE_POLICY_VIOLATION,
  CLOSE_TOO_SLOW,
  DEFAULT_OPTIONS,
} from "./client.js";
export type { ClientEvents, ClientOptions, ConnectionEvent, ConnectionState } from "./client.js";
export { BookView } from "./view.js";
export type { BookLevels } from "./view.js";
export { BookSet } from "./book-set.js";
export type { BookUpdate, PairState, SubscriptionRefusal, SyncChange, UnsyncReason } from "./book-set.js";
export { ChecksumMismatchError, classify, LocalBook, SequenceGapError } from "./book.js";
export type { Level, Verdict } from "./book.js";
export { CHECKSUM_DEPTH, checksumOfLevels, checksumOfSides, crc32 } from "./checksum.js";
export {
  canonical,
  compareDecimal,
  formatUnits,
  InvalidNumberError,
  MAX_NUMBER_LENGTH,
  toUnits,
  zeroOf,
} from "./decimal.js";
export { instrument, NAMED_PAIRS, UnknownPairError } from "./instruments.js";
export type { Instrument, InstrumentSpec } from "./instruments.js";
export { DecodeError, decodeFrame, encodeOp } from "./messages.js";
export type {
  AckMessage,
  ClientOp,
  DeltaMessage,
  ErrorMessage,
  Levels,
  PongMessage,
  ServerMessage,
  SnapshotMessage,
  StreamPosition,
} from "./messages.js";
export {
  afterRefusal,
  backoffDelay,
  DEFAULT_BACKOFF,
  OpPacer,
  parseRetryAfter,
  REFUSAL_BACKOFF,
} from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { ClientStats } from "./stats.js";
export { browserConnector, defaultConnector, nodeConnector } from "./transport.js";
export type { Connector, HandshakeRefusal, Transport, TransportHandlers, WebSocketConstructor } from "./transport.js";
