// Reference browser client of the Prakerja Intake API v1: shrink the KTP photo, submit, poll the status.
//
// A dependency-free ES module (no build step). Import what you need:
//
//   import { shrinkPhoto, submitRegistration, pollStatus, messageFor, fieldErrors } from "./intake-client.js";
//
//   const shrunk = await shrinkPhoto(file);                       // JPEG, longest side <= 1600 px, EXIF-upright
//   const result = await submitRegistration({ registration, photo: shrunk.blob, onProgress });
//   if (result.ok) await pollStatus({ accepted: result.accepted, onUpdate: (s) => render(s), onQueue: showPlace });
//   else showErrors(fieldErrors(result.error), messageFor(result.error, "id"));
//
// Behaviour the service relies on (README, "API v1"):
// * Every submission carries an Idempotency-Key, generated once and reused by every retry of that submission,
//   so a retry after a lost answer yields the same submission id and never a second registration.
// * 429/503 answers carry Retry-After: wait that long plus jitter (so that a wave of clients refused together
//   does not come back together), then retry, a bounded number of times. Network errors back off exponentially.
// * While the submission is queued, the client polls the public, cacheable GET /v1/queue (the same document for
//   everybody) and compares it with its receipt (partition, offset) to show its place in the queue and the
//   estimated wait; it asks for its personal status only once the workers passed its offset.
// * Status polling honours poll_after_seconds / Retry-After and sends If-None-Match with the last ETag (304).
// * Messages for the applicant come from the server in both languages (message_id, message_en); this module only
//   picks one. The few messages about the client's own failures (offline, gave up) are in CLIENT_MESSAGES.

/**
 * @typedef {"id" | "en"} Lang  Bahasa Indonesia or English.
 *
 * @typedef {object} FieldError  One field's error from a 422 `validation_failed`.
 * @property {string} field
 * @property {string} code
 * @property {string} message_id
 * @property {string} message_en
 *
 * @typedef {object} ApiError  The `error` object of every error answer.
 * @property {string} code
 * @property {string} [message]
 * @property {string} message_id
 * @property {string} message_en
 * @property {FieldError[]} [fields]
 * @property {string} [last_code]  Client errors only: the last server code before the client gave up.
 *
 * @typedef {object} Reason  Why a submission is in its state (rejections); from the status answer.
 * @property {string} code
 * @property {string} message_id
 * @property {string} message_en
 * @property {number | string | null} [measured]
 * @property {number | string | null} [threshold]
 *
 * @typedef {object} Accepted  The 202 answer of POST /v1/registrations.
 * @property {string} submission_id
 * @property {string} state
 * @property {string} status_url
 * @property {string} status_token
 * @property {number} poll_after_seconds
 * @property {number} [partition]  Where Kafka appended the record (compare with GET /v1/queue).
 * @property {number} [offset]
 * @property {QueuePlace} [queue]  The place in the queue when the server knew it.
 *
 * @typedef {object} QueuePlace  A queued submission's place (from the server, or queuePlace()).
 * @property {number} partition
 * @property {number} offset
 * @property {number} ahead  Submissions before this one in its partition, not processed yet.
 * @property {number} position  ahead + 1.
 * @property {number | null} estimated_wait_seconds  null while no drain rate was measured.
 * @property {string} message_id  "Anda di antrean ke-…, perkiraan … menit."
 * @property {string} message_en
 *
 * @typedef {object} QueueDoc  The 200 answer of GET /v1/queue.
 * @property {string | null} sampled_at
 * @property {number} max_age_seconds
 * @property {{partition: number, committed: number, end: number, drain_per_second: number | null}[]} partitions
 *
 * @typedef {object} Status  The 200 answer of GET /v1/submissions/{id}.
 * @property {string} submission_id
 * @property {string} state
 * @property {Reason | null} reason
 * @property {number} [poll_after_seconds]
 * @property {QueuePlace} [queue]  While `received`: the place in the queue.
 *
 * @typedef {object} Shrunk  The result of shrinkPhoto.
 * @property {Blob} blob  What to upload (the original file when it could not be decoded here).
 * @property {boolean} reencoded  False when the browser could not decode the photo (e.g. HEIC): sent as is.
 * @property {number} originalBytes
 * @property {number} bytes
 * @property {number} originalWidth  0 when not decoded.
 * @property {number} originalHeight
 * @property {number} width
 * @property {number} height
 *
 * @typedef {object} Progress  Reported by submitRegistration through onProgress.
 * @property {"uploading" | "waiting" | "accepted" | "failed"} stage
 * @property {number} attempt  1-based.
 * @property {number} [loaded]  Bytes sent (uploading).
 * @property {number} [total]   Bytes to send (uploading).
 * @property {number} [waitMs]  How long until the next attempt (waiting).
 * @property {string} [code]    Why we wait: a server code (`overloaded`, ...) or `network_error`.
 *
 * @typedef {object} SubmitResult
 * @property {boolean} ok  True for a 202.
 * @property {number} status  HTTP status of the last attempt (0: no answer).
 * @property {Accepted} [accepted]  When ok.
 * @property {ApiError} [error]  When not ok: the server's error, or a client one (`network_error`, ...).
 * @property {string} idempotencyKey
 * @property {number} attempts
 */

/** Defaults of every option; each can be overridden per call. */
export const DEFAULTS = Object.freeze({
  /** Longest side of the uploaded photo, in px. The service needs >= 640 px; 1600 keeps the NIK digits legible. */
  maxSide: 1600,
  /** JPEG quality of the re-encoded photo, 0..1. */
  quality: 0.85,
  /** Attempts of one submission in all (the first one included). */
  maxAttempts: 5,
  /** First network-error backoff, in ms; doubles each attempt, capped by maxBackoffMs. */
  backoffMs: 1000,
  maxBackoffMs: 30000,
  /** Longest wait honoured from a Retry-After header, in ms (protects against a absurd value). */
  maxRetryAfterMs: 120000,
  /** Jitter added to Retry-After: random in [0, retryAfter * jitterRatio + jitterMinMs). */
  jitterRatio: 0.5,
  jitterMinMs: 250,
  /** Upload timeout of one attempt, in ms (0: none). */
  uploadTimeoutMs: 120000,
  /** Poll interval when the server gives no hint, in s. */
  pollAfterSeconds: 10,
  /** Give up polling after this long, in ms. */
  pollTimeoutMs: 15 * 60 * 1000,
});

/** States in which the submission is still moving; any other state is final for the applicant. */
export const PENDING_STATES = Object.freeze(["received", "processing", "processed"]);

/** HTTP statuses worth retrying with the same Idempotency-Key. 429/503 carry Retry-After; others back off. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** 401 codes that a new signature cures (the attempt took too long, or a signature was sent twice). */
const RESIGN_CODES = new Set(["signature_expired", "request_replayed"]);

/** Error codes of photo problems, shown next to the photo input (the server reports them without a field). */
const PHOTO_CODES = new Set([
  "photo_empty", "photo_too_large", "body_too_large", "not_an_image", "unsupported_format", "image_corrupt",
  "too_many_pixels", "image_too_small", "animated_image",
]);

/** Messages about the client's own failures (the server's messages come with its answers). */
export const CLIENT_MESSAGES = Object.freeze({
  network_error: {
    message_id: "Tidak dapat terhubung ke server; periksa koneksi internet Anda lalu coba lagi.",
    message_en: "Could not reach the server; check your internet connection and try again.",
  },
  gave_up: {
    message_id: "Server masih sibuk setelah beberapa kali percobaan; data Anda belum diterima. Silakan coba lagi nanti.",
    message_en: "The service is still busy after several attempts; your data was not accepted. Please try again later.",
  },
  bad_answer: {
    message_id: "Jawaban server tidak dapat dibaca; silakan coba lagi.",
    message_en: "The server's answer could not be read; please try again.",
  },
  poll_timeout: {
    message_id: "Status belum final; periksa kembali nanti.",
    message_en: "The status is not final yet; check again later.",
  },
});

// --------------------------------------------------------------------------------------------- messages

/**
 * The applicant's message of a reason, an error, a field error or a CLIENT_MESSAGES code, in `lang`.
 * Falls back to the other language, then to `message`, then to the code, so it never returns nothing.
 * @param {Partial<Reason & ApiError & FieldError> | string | null | undefined} item
 * @param {Lang} [lang="id"]
 * @returns {string}
 */
export function messageFor(item, lang = "id") {
  if (item == null) return "";
  const known = /** @type {Record<string, {message_id: string, message_en: string}>} */ (CLIENT_MESSAGES);
  /** @type {Partial<Reason & ApiError & FieldError>} */
  const it = typeof item === "string" ? { code: item, ...(known[item] || {}) } : item;
  const first = lang === "en" ? it.message_en : it.message_id;
  const second = lang === "en" ? it.message_id : it.message_en;
  return first || second || it.message || it.code || "";
}

/**
 * The errors of an error answer keyed by form field: the server's per-field errors of `validation_failed`, plus
 * photo problems under `ktp_photo` and a closed wave under `wave`. The first error of a field wins.
 * @param {ApiError | null | undefined} error
 * @returns {Record<string, FieldError>}
 */
export function fieldErrors(error) {
  /** @type {Record<string, FieldError>} */
  const out = {};
  if (!error) return out;
  for (const f of error.fields || []) {
    if (f && typeof f.field === "string" && !(f.field in out)) out[f.field] = f;
  }
  const code = error.code;
  let field = null;
  if (PHOTO_CODES.has(code)) field = "ktp_photo";
  else if (code === "wave_not_open") field = "wave";
  if (field && !(field in out)) {
    out[field] = { field, code, message_id: error.message_id, message_en: error.message_en };
  }
  return out;
}

/** True when `state` is final for the applicant (not received, processing or processed). */
export function isFinalState(/** @type {string} */ state) {
  return !PENDING_STATES.includes(state);
}

// --------------------------------------------------------------------------------------------- photo

/**
 * Decode the photo upright (EXIF orientation applied), scale it so its longest side is at most `maxSide` (never
 * up), and re-encode it as JPEG. Re-encoding also drops the file's metadata (GPS position, camera). A photo the
 * browser cannot decode (e.g. HEIC on most browsers) or re-encode is returned unchanged: the server decodes it.
 * Never rejects.
 * @param {Blob} file
 * @param {{maxSide?: number, quality?: number}} [options]
 * @returns {Promise<Shrunk>}
 */
export async function shrinkPhoto(file, options = {}) {
  const maxSide = options.maxSide ?? DEFAULTS.maxSide;
  const quality = options.quality ?? DEFAULTS.quality;
  /** @type {Shrunk} */
  const asIs = {
    blob: file, reencoded: false, originalBytes: file.size, bytes: file.size,
    originalWidth: 0, originalHeight: 0, width: 0, height: 0,
  };
  /** @type {ImageBitmap} */
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return asIs; // not decodable here: the server decodes it (or explains why not)
  }
  try {
    const { width: w0, height: h0 } = bitmap;
    const scale = Math.min(1, maxSide / Math.max(w0, h0));
    const width = Math.max(1, Math.round(w0 * scale));
    const height = Math.max(1, Math.round(h0 * scale));
    const blob = await drawJpeg(bitmap, width, height, quality);
    return {
      blob, reencoded: true, originalBytes: file.size, bytes: blob.size,
      originalWidth: w0, originalHeight: h0, width, height,
    };
  } catch {
    return { ...asIs, originalWidth: bitmap.width, originalHeight: bitmap.height }; // e.g. canvas too large
  } finally {
    bitmap.close();
  }
}

/**
 * Draw `bitmap` at width x height on an (Offscreen)Canvas with high-quality smoothing; encode as JPEG.
 * @param {ImageBitmap} bitmap
 * @param {number} width
 * @param {number} height
 * @param {number} quality
 * @returns {Promise<Blob>}
 */
async function drawJpeg(bitmap, width, height, quality) {
  if (typeof OffscreenCanvas !== "undefined") {
    const canvas = new OffscreenCanvas(width, height);
    const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, width, height);
    return canvas.convertToBlob({ type: "image/jpeg", quality });
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, width, height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("JPEG encoding failed"))), "image/jpeg", quality);
  });
}

// --------------------------------------------------------------------------------------------- submit

/**
 * A new Idempotency-Key: a random UUID (crypto.randomUUID needs a secure context; fall back to getRandomValues).
 * @returns {string}
 */
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Milliseconds to wait for a Retry-After value (delta-seconds or an HTTP date), or null when absent/invalid.
 * @param {string | null} value
 * @param {number} [now=Date.now()]
 * @returns {number | null}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value.trim() === "") return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * How long to wait before attempt `attempt + 1`: Retry-After plus jitter when the server said, else exponential
 * backoff with jitter (between half and all of the capped exponential).
 * @param {number | null} retryAfterMs
 * @param {number} attempt  1-based number of the attempt that just failed.
 * @param {typeof DEFAULTS} o
 * @param {() => number} random
 * @returns {number}
 */
export function retryDelay(retryAfterMs, attempt, o, random = Math.random) {
  if (retryAfterMs != null) {
    const base = Math.min(retryAfterMs, o.maxRetryAfterMs);
    return Math.round(base + random() * (base * o.jitterRatio + o.jitterMinMs));
  }
  const exp = Math.min(o.maxBackoffMs, o.backoffMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Resolve after `ms`, or reject when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * One POST with XMLHttpRequest (fetch cannot report upload progress). Resolves with the answer, whatever its
 * status; rejects with a TypeError on a network error or timeout (no answer), or the abort reason.
 * @param {string} url
 * @param {FormData} body
 * @param {Record<string, string>} headers
 * @param {{timeoutMs: number, signal?: AbortSignal, onUpload?: (loaded: number, total: number) => void}} o
 * @returns {Promise<{status: number, retryAfter: string | null, body: any}>}
 */
function postOnce(url, body, headers, o) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.timeout = o.timeoutMs;
    if (o.onUpload) {
      const report = o.onUpload;
      xhr.upload.onprogress = (e) => report(e.loaded, e.lengthComputable ? e.total : 0);
    }
    const onAbort = () => xhr.abort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => o.signal?.removeEventListener("abort", onAbort);
    xhr.onload = () => {
      done();
      let parsed = null;
      try {
        parsed = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        parsed = null; // e.g. an HTML error page of a proxy: handled by status
      }
      resolve({ status: xhr.status, retryAfter: xhr.getResponseHeader("Retry-After"), body: parsed });
    };
    xhr.onerror = () => { done(); reject(new TypeError("network error")); };
    xhr.ontimeout = () => { done(); reject(new TypeError("upload timed out")); };
    xhr.onabort = () => { done(); reject(o.signal?.reason ?? new DOMException("aborted", "AbortError")); };
    xhr.send(body);
  });
}

/**
 * An ApiError for a client-side failure (code of CLIENT_MESSAGES).
 * @param {keyof typeof CLIENT_MESSAGES} code
 * @returns {ApiError}
 */
function clientError(code) {
  return { code, ...CLIENT_MESSAGES[code] };
}

/**
 * Submit one registration with its photo. Retries 429/503 after Retry-After (+ jitter), other transient
 * statuses and network errors with exponential backoff, at most `maxAttempts` attempts in all, always with the
 * same Idempotency-Key. Never throws for HTTP or network failures: the result says what happened. Throws only
 * the abort reason when `signal` aborts.
 * @param {object} args
 * @param {Record<string, unknown>} args.registration  The registration JSON (see README).
 * @param {Blob} args.photo  Usually `(await shrinkPhoto(file)).blob`.
 * @param {string} [args.photoName="ktp.jpg"]
 * @param {string} [args.baseUrl=""]  Origin of the API ("" = this page's origin).
 * @param {string} [args.idempotencyKey]  Pass the key of an earlier, unfinished submission to resume it.
 * @param {Lang} [args.lang="id"]  Sent as Accept-Language (chooses the `message` of errors).
 * @param {(p: Progress) => void} [args.onProgress]
 * @param {AbortSignal} [args.signal]
 * @param {Partial<typeof DEFAULTS>} [args.options]
 * @param {() => number} [args.random=Math.random]  Jitter source (tests).
 * @param {(req: {method: string, path: string, idempotencyKey: string}) => Promise<Record<string, string>>}
 *   [args.authorize]  Asks the front end's backend to sign this attempt (the API needs a signed POST); called
 *   before every attempt, so each retry carries a fresh signature over the same Idempotency-Key.
 * @returns {Promise<SubmitResult>}
 */
export async function submitRegistration(args) {
  const o = { ...DEFAULTS, ...(args.options || {}) };
  const random = args.random || Math.random;
  const key = args.idempotencyKey || newIdempotencyKey();
  const report = args.onProgress || (() => {});
  const path = "/v1/registrations";
  const url = `${args.baseUrl || ""}${path}`;
  const baseHeaders = {
    "Idempotency-Key": key,
    "Accept": "application/json",
    "Accept-Language": args.lang === "en" ? "en, id;q=0.5" : "id, en;q=0.5",
  };
  /** @type {SubmitResult} */
  let last = { ok: false, status: 0, error: clientError("network_error"), idempotencyKey: key, attempts: 0 };
  for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
    // A fresh body per attempt: the photo Blob is read again, nothing is re-encoded.
    const form = new FormData();
    form.append("registration", new Blob([JSON.stringify(args.registration)], { type: "application/json" }));
    form.append("ktp_photo", args.photo, args.photoName || "ktp.jpg");
    let retryAfterMs = null;
    try {
      const signed = args.authorize ? await args.authorize({ method: "POST", path, idempotencyKey: key }) : {};
      const headers = { ...baseHeaders, ...signed };
      const answer = await postOnce(url, form, headers, {
        timeoutMs: o.uploadTimeoutMs,
        signal: args.signal,
        onUpload: (loaded, total) => report({ stage: "uploading", attempt, loaded, total }),
      });
      if (answer.status === 202 && answer.body && answer.body.status_url) {
        report({ stage: "accepted", attempt });
        return { ok: true, status: 202, accepted: answer.body, idempotencyKey: key, attempts: attempt };
      }
      const error = answer.body && answer.body.error ? answer.body.error : clientError("bad_answer");
      last = { ok: false, status: answer.status, error, idempotencyKey: key, attempts: attempt };
      const resign = answer.status === 401 && RESIGN_CODES.has(error.code); // a fresh signature will do
      if (!RETRY_STATUSES.has(answer.status) && !resign) break; // the input must change: retrying cannot help
      retryAfterMs = parseRetryAfter(answer.retryAfter);
    } catch (e) {
      if (args.signal?.aborted) throw e;
      last = { ok: false, status: 0, error: clientError("network_error"), idempotencyKey: key, attempts: attempt };
    }
    if (attempt === o.maxAttempts) break;
    const waitMs = retryDelay(retryAfterMs, attempt, o, random);
    report({ stage: "waiting", attempt, waitMs, code: last.error?.code });
    await sleep(waitMs, args.signal);
  }
  if (last.status === 0 || RETRY_STATUSES.has(last.status)) {
    // Still transient after every attempt: say so, keeping the last server code for the record.
    const kept = last.error?.code;
    last = { ...last, error: { ...clientError(last.status === 0 ? "network_error" : "gave_up"), last_code: kept } };
  }
  report({ stage: "failed", attempt: last.attempts, code: last.error?.code });
  return last;
}

// --------------------------------------------------------------------------------------------- queue

/**
 * A number as the applicant reads it: "1.234" in Indonesian, "1,234" in English.
 * @param {number} n
 * @param {Lang} lang
 */
function formatCount(n, lang) {
  return new Intl.NumberFormat(lang === "en" ? "en" : "id-ID").format(n);
}

/**
 * The applicant's line for a place in the queue, in both languages (the server's `received` status says the same).
 * @param {number} position
 * @param {number | null} waitSeconds  null: no estimate (no drain rate measured yet).
 * @returns {{message_id: string, message_en: string}}
 */
export function queueMessages(position, waitSeconds) {
  const id = formatCount(position, "id");
  const en = formatCount(position, "en");
  if (waitSeconds == null) {
    return {
      message_id: `Anda di antrean ke-${id}; perkiraan waktu tunggu belum tersedia.`,
      message_en: `You are number ${en} in the queue; no wait estimate yet.`,
    };
  }
  const minutes = Math.max(1, Math.ceil(waitSeconds / 60));
  return {
    message_id: `Anda di antrean ke-${id}, perkiraan ${formatCount(minutes, "id")} menit.`,
    message_en: `You are number ${en} in the queue, estimated wait ${formatCount(minutes, "en")} min.`,
  };
}

/**
 * The place of an accepted submission in the queue from its receipt and the watermark document; null when the
 * workers already passed it (ask for the personal status) or the document does not know its partition.
 * @param {Accepted} accepted
 * @param {QueueDoc} doc
 * @returns {QueuePlace | null}
 */
export function queuePlace(accepted, doc) {
  const { partition, offset } = accepted;
  if (typeof partition !== "number" || typeof offset !== "number") return null;
  const mark = (doc.partitions || []).find((p) => p.partition === partition);
  if (!mark || offset < mark.committed) return null;
  const ahead = offset - mark.committed;
  const rate = mark.drain_per_second;
  const wait = ahead === 0 ? 0 : typeof rate === "number" && rate > 0 ? Math.round(ahead / rate) : null;
  return { partition, offset, ahead, position: ahead + 1, estimated_wait_seconds: wait, ...queueMessages(ahead + 1, wait) };
}

/**
 * Follow the public watermark while the submission is queued: GET /v1/queue (cacheable, If-None-Match), report
 * the place through `onQueue`, wait a fraction of the estimated wait (between the document's max-age and 60 s).
 * Resolves true once the workers passed the receipt's offset, false when the watermark cannot tell (no receipt,
 * partition unknown, errors): the caller then polls the personal status.
 * @param {{accepted: Accepted, baseUrl?: string, onQueue?: (p: QueuePlace) => void, signal?: AbortSignal,
 *   deadline: number}} args
 * @returns {Promise<boolean>}
 */
async function waitInQueue(args) {
  if (typeof args.accepted.partition !== "number" || typeof args.accepted.offset !== "number") return false;
  const url = `${args.baseUrl || ""}/v1/queue`;
  /** @type {QueueDoc | null} */
  let doc = null;
  /** @type {string | null} */
  let etag = null;
  for (let failures = 0; failures < 3 && Date.now() < args.deadline; ) {
    let response;
    try {
      response = await fetch(url, {
        headers: etag ? { "If-None-Match": etag, Accept: "application/json" } : { Accept: "application/json" },
        cache: "no-cache",
        signal: args.signal,
      });
    } catch (e) {
      if (args.signal?.aborted) throw e;
      failures++;
      await sleep(1000 * failures, args.signal);
      continue;
    }
    if (response.status === 200) {
      etag = response.headers.get("ETag");
      doc = /** @type {QueueDoc} */ (await response.json());
    } else if (response.status !== 304 || !doc) {
      failures++;
      await sleep(1000 * failures, args.signal);
      continue;
    }
    failures = 0;
    if (!doc.partitions || !doc.partitions.some((p) => p.partition === args.accepted.partition)) return false;
    const place = queuePlace(args.accepted, doc);
    if (!place) return true;
    if (args.onQueue) args.onQueue(place);
    const maxAge = Math.max(1, doc.max_age_seconds || 1);
    const wait = place.estimated_wait_seconds;
    const seconds = Math.min(60, Math.max(maxAge, wait == null ? 10 : wait / 4));
    await sleep(seconds * 1000, args.signal);
  }
  return false;
}

// --------------------------------------------------------------------------------------------- status

/**
 * Poll the status of an accepted submission until its state is final (see isFinalState, or `until`). While it
 * is queued, only the public watermark is polled (GET /v1/queue) and its place reported through `onQueue`; then
 * the personal status, honouring the server's pacing: Retry-After, else poll_after_seconds, plus a little jitter.
 * Sends If-None-Match with the last ETag; a 304 keeps the last status. 429/503 wait for Retry-After; network
 * errors back off. Calls `onUpdate` each time the status changes (and `onQueue` with a `received` status's
 * place). Resolves with the last status and whether it is final; throws an Error with `.status` and `.error` on
 * 401/404 (wrong token or id), or the abort reason.
 * @param {object} args
 * @param {Accepted} args.accepted  The 202 answer (status_url, status_token, poll_after_seconds, partition, offset).
 * @param {string} [args.baseUrl=""]
 * @param {(s: Status) => void} [args.onUpdate]
 * @param {(p: QueuePlace) => void} [args.onQueue]  The place in the queue, each time it is known again.
 * @param {(s: Status) => boolean} [args.until]  Stop when true (default: isFinalState(s.state)).
 * @param {AbortSignal} [args.signal]
 * @param {Partial<typeof DEFAULTS>} [args.options]
 * @param {() => number} [args.random=Math.random]
 * @returns {Promise<{status: Status | null, final: boolean, polls: number}>}
 */
export async function pollStatus(args) {
  const o = { ...DEFAULTS, ...(args.options || {}) };
  const random = args.random || Math.random;
  const until = args.until || ((/** @type {Status} */ s) => isFinalState(s.state));
  const url = `${args.baseUrl || ""}${args.accepted.status_url}`;
  const deadline = Date.now() + o.pollTimeoutMs;
  /** @type {Status | null} */
  let status = null;
  /** @type {string | null} */
  let etag = null;
  let failures = 0;
  let polls = 0;
  if (args.accepted.queue && args.onQueue) args.onQueue(args.accepted.queue);
  // While queued, watch the public watermark; once the workers passed the offset, the personal status is due.
  const passed = await waitInQueue({
    accepted: args.accepted, baseUrl: args.baseUrl, onQueue: args.onQueue, signal: args.signal, deadline,
  });
  // Otherwise the first look comes after the hint of the 202 answer: the consumer needs that long anyway.
  let waitMs = passed ? 0 : secondsHint(args.accepted.poll_after_seconds, o) * 1000;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { status, final: false, polls };
    await sleep(Math.min(waitMs, remaining), args.signal);
    polls++;
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${args.accepted.status_token}`, Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      // cache: "no-store" keeps the browser's HTTP cache out of it: the conditional request is ours.
      response = await fetch(url, { headers, cache: "no-store", signal: args.signal });
    } catch (e) {
      if (args.signal?.aborted) throw e;
      failures++;
      waitMs = retryDelay(null, failures, o, random);
      continue;
    }
    const retryAfterMs = parseRetryAfter(response.headers.get("Retry-After"));
    if (response.status === 200 || response.status === 304) {
      failures = 0;
      if (response.status === 200) {
        etag = response.headers.get("ETag");
        const next = /** @type {Status} */ (await response.json());
        const changed = !status || JSON.stringify(next) !== JSON.stringify(status);
        status = next;
        if (changed && args.onUpdate) args.onUpdate(status);
        if (changed && status.queue && args.onQueue) args.onQueue(status.queue);
      }
      if (status && until(status)) return { status, final: true, polls };
      const hintS = retryAfterMs != null ? retryAfterMs / 1000 : status?.poll_after_seconds;
      const base = secondsHint(hintS, o) * 1000;
      waitMs = Math.round(base + random() * Math.min(1000, base * 0.1));
      continue;
    }
    if (response.status === 401 || response.status === 404) {
      const body = await response.json().catch(() => null);
      throw Object.assign(new Error(`status ${response.status}`), { status: response.status, error: body?.error });
    }
    // 429/503 with Retry-After, other 5xx (or anything unexpected) with backoff.
    failures++;
    waitMs = retryDelay(retryAfterMs, failures, o, random);
  }
}

/**
 * A polling interval in seconds from a server hint, bounded to [1, 300] s; the default when there is none.
 * @param {number | null | undefined} hint
 * @param {typeof DEFAULTS} o
 * @returns {number}
 */
function secondsHint(hint, o) {
  const s = typeof hint === "number" && Number.isFinite(hint) ? hint : o.pollAfterSeconds;
  return Math.min(300, Math.max(1, s));
}
