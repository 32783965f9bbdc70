/**
 * Prices and quantities as exact decimal strings, never JavaScript numbers.
 *
 * Every pair has a fixed number of price and quantity decimals (protocol.md section 2), and
 * the wire carries each value in *canonical form*: exactly that many decimals, digits only,
 * no sign, no exponent, no leading zeros ("64000.10", "0.00000"). So two canonical values of
 * one pair compare exactly as strings once their lengths are compared first: a longer whole
 * part is a larger number, and for equal lengths the character order is the numeric order.
 * That is how the book sorts its levels ({@link compareDecimal}): no parsing, no rounding.
 *
 * Input that is not canonical but means the same value ("1.5" for "1.50000", "0" for
 * "0.00000") is brought to canonical form first ({@link canonical}), as the protocol asks:
 * the checksum is computed over canonical strings. Arithmetic (a spread, cumulative depth)
 * goes through scaled BigInt units: {@link toUnits}, {@link formatUnits}.
 */

/** A canonical number is never longer than this (protocol.md section 2). */
export const MAX_NUMBER_LENGTH = 64;

export class InvalidNumberError extends Error {
  override name = "InvalidNumberError";
}

const DIGIT_0 = 48;
const DIGIT_9 = 57;
const DOT = 46;

function digitsOnly(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < DIGIT_0 || c > DIGIT_9) return false;
  }
  return true;
}

/**
 * The canonical form of a non-negative decimal string with `decimals` places.
 *
 * Extra fractional digits are accepted only if they are zeros ("1.500" with 2 decimals);
 * anything finer is off the grid and rejected, as is a sign, an exponent, an empty string,
 * or a result longer than {@link MAX_NUMBER_LENGTH}. Canonical input is returned as is
 * (the common case costs one scan of its characters).
 */
export function canonical(text: string, decimals: number): string {
  if (typeof text !== "string" || text.length === 0 || text.length > MAX_NUMBER_LENGTH) {
    throw new InvalidNumberError(`not a non-negative decimal string: ${JSON.stringify(text)}`);
  }
  const n = text.length;
  if (decimals === 0) {
    if (digitsOnly(text, 0, n) && (n === 1 || text.charCodeAt(0) !== DIGIT_0)) return text;
  } else {
    const dot = n - decimals - 1;
    if (
      dot > 0 &&
      text.charCodeAt(dot) === DOT &&
      digitsOnly(text, 0, dot) &&
      digitsOnly(text, dot + 1, n) &&
      (dot === 1 || text.charCodeAt(0) !== DIGIT_0)
    ) {
      return text;
    }
  }
  return canonicalSlow(text, decimals);
}

const DECIMAL = /^([0-9]+)(?:\.([0-9]+))?$/;

function canonicalSlow(text: string, decimals: number): string {
  const match = DECIMAL.exec(text);
  if (match === null) {
    throw new InvalidNumberError(`not a non-negative decimal string: ${JSON.stringify(text)}`);
  }
  let whole = (match[1] ?? "0").replace(/^0+(?=[0-9])/, "");
  let frac = match[2] ?? "";
  if (frac.length > decimals) {
    if (/[1-9]/.test(frac.slice(decimals))) {
      throw new InvalidNumberError(`${JSON.stringify(text)} has more than ${decimals} decimals`);
    }
    frac = frac.slice(0, decimals);
  }
  frac = frac.padEnd(decimals, "0");
  if (whole === "") whole = "0";
  const result = decimals === 0 ? whole : `${whole}.${frac}`;
  if (result.length > MAX_NUMBER_LENGTH) {
    throw new InvalidNumberError(
      `${JSON.stringify(text)} with ${decimals} decimals would be longer than ${MAX_NUMBER_LENGTH} characters`,
    );
  }
  return result;
}

/** Numeric order of two canonical values with the same decimals: negative, 0 or positive. */
export function compareDecimal(a: string, b: string): number {
  const d = a.length - b.length;
  if (d !== 0) return d;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The canonical zero with `decimals` places ("0", "0.00", ...). */
export function zeroOf(decimals: number): string {
  return decimals === 0 ? "0" : `0.${"0".repeat(decimals)}`;
}

/** A canonical value as integer units of 10^-decimals (exact, any size). */
export function toUnits(value: string, decimals: number): bigint {
  const text = canonical(value, decimals);
  return BigInt(decimals === 0 ? text : text.replace(".", ""));
}

/** Integer units of 10^-decimals as a canonical string; negative values get a leading "-". */
export function formatUnits(units: bigint, decimals: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, "0");
  const text = decimals === 0 ? digits : `${digits.slice(0, -decimals)}.${digits.slice(-decimals)}`;
  return negative ? `-${text}` : text;
}
