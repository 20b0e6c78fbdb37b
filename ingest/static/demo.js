// The demo registration page (demo.html): form -> shrinkPhoto -> submitRegistration -> pollStatus.
// Everything shown to the applicant is rendered from `view` by render(), so the language toggle re-renders
// labels, field errors, the photo sizes and the status in place. Indonesian first.

import { fieldErrors, messageFor, pollStatus, shrinkPhoto, submitRegistration } from "./intake-client.js";

/**
 * Ask the demo's stand-in for the front end's backend to sign one attempt. In production the registration site's
 * own backend does this after the applicant's login and OTP; the demo server signs for anyone.
 * @param {{method: string, path: string, idempotencyKey: string}} req
 * @returns {Promise<Record<string, string>>}
 */
async function demoAuthorize(req) {
  const response = await fetch("/demo/sign", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ method: req.method, path: req.path, idempotency_key: req.idempotencyKey }),
    cache: "no-store",
  });
  if (!response.ok) throw new TypeError(`signing failed: ${response.status}`);
  return response.json();
}

/** @typedef {import("./intake-client.js").Lang} Lang */
/** @typedef {import("./intake-client.js").ApiError} ApiError */
/** @typedef {import("./intake-client.js").Status} Status */
/** @typedef {import("./intake-client.js").Shrunk} Shrunk */
/** @typedef {import("./intake-client.js").Progress} Progress */
/** @typedef {import("./intake-client.js").QueuePlace} QueuePlace */

/** Field names of the registration JSON, in form order (the photo is sent as its own part). */
const FIELDS = [
  "full_name", "email", "nik", "birth_date", "ktp_address", "domicile_address",
  "education", "employment_status", "phone", "wave",
];

/** Page texts: [Bahasa Indonesia, English]. Messages about the data itself come from the server. */
const TEXT = {
  title: ["Pendaftaran Kartu Prakerja", "Kartu Prakerja registration"],
  demo_note: [
    "Halaman demo untuk pengembangan. Jangan memasukkan data pribadi asli.",
    "Demo page for development. Do not enter real personal data.",
  ],
  full_name: ["Nama lengkap", "Full name"],
  email: ["Email", "Email"],
  nik: ["NIK (16 digit)", "NIK (16 digits)"],
  birth_date: ["Tanggal lahir", "Birth date"],
  ktp_address: ["Alamat sesuai KTP", "Address on the KTP"],
  domicile_address: ["Alamat domisili", "Domicile address"],
  education: ["Pendidikan terakhir", "Highest education"],
  employment_status: ["Status pekerjaan", "Employment status"],
  phone: ["Nomor HP", "Mobile number"],
  wave: ["Gelombang", "Wave"],
  ktp_photo: ["Foto KTP", "KTP photo"],
  photo_hint: [
    "Foto seluruh kartu di atas latar polos, fokus, tanpa pantulan cahaya.",
    "Photograph the whole card on a plain background, in focus, without glare.",
  ],
  choose: ["— Pilih —", "— Choose —"],
  edu_tidak_tamat_sd: ["Tidak tamat SD", "Did not finish primary school"],
  emp_bekerja: ["Bekerja", "Employed"],
  emp_wirausaha: ["Wirausaha", "Self-employed"],
  emp_dirumahkan: ["Dirumahkan", "Furloughed"],
  emp_korban_phk: ["Korban PHK", "Laid off"],
  emp_pencari_kerja: ["Pencari kerja", "Looking for work"],
  emp_tidak_bekerja: ["Tidak bekerja", "Not working"],
  submit: ["Kirim pendaftaran", "Submit registration"],
  status_title: ["Status pendaftaran", "Registration status"],
  status_idle: ["Belum dikirim.", "Not sent yet."],
  lang_toggle: ["English", "Bahasa Indonesia"],
  photo_required: ["Foto KTP wajib diunggah.", "The KTP photo is required."],
  photo_before: ["Sebelum", "Before"],
  photo_after: ["Sesudah", "After"],
  photo_as_is: ["dikirim apa adanya (tidak dapat dibaca browser)", "sent as is (the browser cannot read it)"],
  stage_shrinking: ["Mengecilkan foto…", "Shrinking the photo…"],
  stage_uploading: ["Mengunggah… {pct}", "Uploading… {pct}"],
  stage_waiting: [
    "Server sibuk; mencoba lagi dalam {s} detik (percobaan {next} dari {max}).",
    "The service is busy; retrying in {s} s (attempt {next} of {max}).",
  ],
  stage_waiting_network: [
    "Koneksi terputus; mencoba lagi dalam {s} detik (percobaan {next} dari {max}).",
    "Connection lost; retrying in {s} s (attempt {next} of {max}).",
  ],
  stage_accepted: ["Pendaftaran diterima. Menunggu hasil pemeriksaan…", "Registration received. Waiting for the check…"],
  stage_polling: ["Menunggu hasil pemeriksaan…", "Waiting for the check…"],
  stage_final: ["Pemeriksaan selesai.", "The check is complete."],
  stage_failed: ["Pendaftaran belum diterima.", "The registration was not accepted."],
  stage_poll_failed: ["Status tidak dapat dibaca.", "The status could not be read."],
  submission_id: ["Nomor pengajuan: {id}", "Submission number: {id}"],
  state_received: ["Diterima; menunggu pemrosesan.", "Received; waiting to be processed."],
  state_processing: ["Sedang diproses.", "Being processed."],
  state_processed: ["Foto KTP diterima; data Anda sedang diperiksa.", "KTP photo accepted; your data is being checked."],
  state_eligible: ["Memenuhi syarat; menunggu seleksi gelombang.", "Eligible; waiting for the wave's selection."],
  state_rejected: ["Ditolak.", "Rejected."],
  state_selected: ["Selamat, Anda terpilih sebagai penerima Kartu Prakerja.", "Congratulations, you were selected."],
  state_quota_exceeded: ["Kuota gelombang sudah penuh.", "The wave's quota is full."],
};

const MAX_ATTEMPTS = 5;

/** What the page shows; render() draws it. */
const view = {
  /** @type {Lang} */ lang: "id",
  /** @type {Shrunk | null} */ shrunk: null,
  /** @type {Record<string, {message_id: string, message_en: string} | null>} */ errors: {},
  /** @type {string} */ stage: "status_idle",
  /** @type {Record<string, string | number>} */ stageArgs: {},
  /** @type {number | null} */ progress: null,
  /** @type {string | null} */ submissionId: null,
  /** @type {Status | null} */ status: null,
  /** @type {ApiError | null} */ error: null,
  /** @type {QueuePlace | null} */ queue: null,
};

/** @type {Promise<Shrunk> | null} the shrink of the chosen file, awaited by submit */
let shrinking = null;
/** Idempotency-Key of a submission that failed transiently and may be resumed (cleared when the form changes). */
let resumeKey = /** @type {string | null} */ (null);
/** @type {AbortController | null} */
let polling = null;
/** @type {string | null} */
let previewUrl = null;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * A page text in the current language, with {name} placeholders filled.
 * @param {string} key
 * @param {Record<string, string | number>} [args]
 */
function t(key, args = {}) {
  const pair = TEXT[/** @type {keyof typeof TEXT} */ (key)] || [key, key];
  const text = pair[view.lang === "en" ? 1 : 0];
  return text.replace(/\{(\w+)\}/g, (_, name) => String(args[name] ?? ""));
}

/** @param {number} n */
function formatBytes(n) {
  const locale = view.lang === "en" ? "en" : "id-ID";
  const fmt = (/** @type {number} */ v, /** @type {number} */ d) =>
    new Intl.NumberFormat(locale, { maximumFractionDigits: d }).format(v);
  return n >= 1024 * 1024 ? `${fmt(n / (1024 * 1024), 1)} MB` : `${fmt(Math.ceil(n / 1024), 0)} KB`;
}

// --------------------------------------------------------------------------------------------- render

function render() {
  document.documentElement.lang = view.lang;
  document.title = `${t("title")} (demo)`;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(/** @type {string} */ (el.getAttribute("data-i18n")));
  }
  const toggle = $("lang-toggle");
  toggle.textContent = t("lang_toggle");
  toggle.setAttribute("lang", view.lang === "en" ? "id" : "en");

  // Per-field errors, next to their fields.
  for (const el of document.querySelectorAll("[data-error-for]")) {
    const field = /** @type {string} */ (el.getAttribute("data-error-for"));
    const error = view.errors[field];
    el.textContent = error ? messageFor(error, view.lang) : "";
    const input = document.getElementById(field);
    if (input) input.setAttribute("aria-invalid", error ? "true" : "false");
  }

  // The photo: preview and its size before and after shrinking.
  const info = $("photo-info");
  const s = view.shrunk;
  $("photo-preview").hidden = !s;
  if (s) {
    info.dataset.originalBytes = String(s.originalBytes);
    info.dataset.bytes = String(s.bytes);
    info.textContent = s.reencoded
      ? `${t("photo_before")}: ${formatBytes(s.originalBytes)} · ${s.originalWidth} × ${s.originalHeight} px → ` +
        `${t("photo_after")}: ${formatBytes(s.bytes)} · ${s.width} × ${s.height} px`
      : `${formatBytes(s.originalBytes)}: ${t("photo_as_is")}`;
  }

  // The status panel.
  const panel = $("status-panel");
  // data-state: the submission's state once known, else "error" or the client's stage ("idle", "uploading", ...).
  const stage = view.stage === "status_idle" ? "idle" : view.stage.replace("stage_", "");
  panel.dataset.state = view.status ? view.status.state : view.error ? "error" : stage;
  $("status-stage").textContent = t(view.stage, view.stageArgs);
  const bar = /** @type {HTMLProgressElement} */ ($("upload-progress"));
  bar.hidden = view.progress == null;
  bar.value = view.progress ?? 0;
  $("status-id").textContent = view.submissionId ? t("submission_id", { id: view.submissionId }) : "";
  const state = view.status?.state;
  $("status-state").textContent = state ? t(`state_${state}`) : "";
  const queue = $("status-queue");
  const place = view.status && view.status.state !== "received" ? null : view.queue;
  queue.textContent = place ? messageFor(place, view.lang) : "";
  queue.dataset.position = place ? String(place.position) : "";
  const reason = $("status-reason");
  const shown = view.status?.reason || view.error;
  reason.textContent = shown ? messageFor(shown, view.lang) : "";
  reason.dataset.code = shown ? shown.code : "";
}

// --------------------------------------------------------------------------------------------- actions

function onPhotoChosen() {
  const input = /** @type {HTMLInputElement} */ ($("ktp_photo"));
  const file = input.files && input.files[0];
  view.errors.ktp_photo = null;
  view.shrunk = null;
  if (!file) {
    shrinking = null;
    render();
    return;
  }
  view.stage = "stage_shrinking";
  render();
  const started = shrinkPhoto(file);
  shrinking = started;
  started.then((s) => {
    if (shrinking !== started) return; // another file was chosen meanwhile
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(s.blob);
    /** @type {HTMLImageElement} */ ($("preview-img")).src = previewUrl;
    view.shrunk = s;
    if (view.stage === "stage_shrinking") view.stage = "status_idle";
    render();
  });
}

/** The registration JSON from the form (values as typed; the server normalises and validates them). */
function readRegistration() {
  const form = /** @type {HTMLFormElement} */ ($("registration-form"));
  const data = new FormData(form);
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const name of FIELDS) out[name] = String(data.get(name) ?? "");
  const wave = String(out.wave).trim();
  out.wave = /^\d+$/.test(wave) ? Number(wave) : wave;
  return out;
}

/** @param {Progress} p */
function onProgress(p) {
  if (p.stage === "uploading") {
    view.stage = "stage_uploading";
    const fraction = p.total ? (p.loaded || 0) / p.total : 0;
    view.progress = fraction;
    view.stageArgs = { pct: p.total ? `${Math.round(fraction * 100)}%` : "" };
  } else if (p.stage === "waiting") {
    view.stage = p.code === "network_error" ? "stage_waiting_network" : "stage_waiting";
    view.stageArgs = { s: Math.ceil((p.waitMs || 0) / 1000), next: p.attempt + 1, max: MAX_ATTEMPTS };
    view.progress = null;
  }
  render();
}

/** @param {SubmitEvent} event */
async function onSubmit(event) {
  event.preventDefault();
  polling?.abort();
  polling = null;
  Object.assign(view, {
    errors: {}, status: null, error: null, submissionId: null, progress: null, stageArgs: {}, queue: null,
  });
  const button = /** @type {HTMLButtonElement} */ ($("submit"));
  if (!shrinking) {
    view.errors.ktp_photo = { message_id: TEXT.photo_required[0], message_en: TEXT.photo_required[1] };
    view.stage = "stage_failed";
    render();
    return;
  }
  button.disabled = true;
  try {
    view.stage = "stage_shrinking";
    render();
    const shrunk = await shrinking;
    const result = await submitRegistration({
      registration: readRegistration(),
      photo: shrunk.blob,
      photoName: shrunk.reencoded ? "ktp.jpg" : (/** @type {File} */ (shrunk.blob)).name || "ktp",
      idempotencyKey: resumeKey || undefined,
      lang: view.lang,
      onProgress,
      options: { maxAttempts: MAX_ATTEMPTS },
      authorize: demoAuthorize,
    });
    view.progress = null;
    if (!result.ok || !result.accepted) {
      // Keep the key only when the data was not at fault: retrying it then resumes the same submission.
      resumeKey = result.status === 0 || result.status >= 500 || result.status === 429 ? result.idempotencyKey : null;
      view.error = result.error || null;
      view.errors = fieldErrors(result.error);
      view.stage = "stage_failed";
      render();
      focusFirstError();
      return;
    }
    resumeKey = null;
    const accepted = result.accepted;
    view.submissionId = accepted.submission_id;
    view.stage = "stage_accepted";
    render();
    polling = new AbortController();
    const outcome = await pollStatus({
      accepted,
      signal: polling.signal,
      onUpdate: (status) => {
        view.status = status;
        view.stage = "stage_polling";
        render();
      },
      onQueue: (place) => {
        view.queue = place;
        render();
      },
    });
    view.stage = outcome.final ? "stage_final" : "stage_polling";
    render();
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") return;
    view.stage = "stage_poll_failed";
    view.error = /** @type {any} */ (e).error || null;
    render();
  } finally {
    button.disabled = false;
  }
}

function focusFirstError() {
  for (const name of [...FIELDS, "ktp_photo"]) {
    if (view.errors[name]) {
      document.getElementById(name)?.focus();
      return;
    }
  }
}

function init() {
  const form = /** @type {HTMLFormElement} */ ($("registration-form"));
  form.addEventListener("submit", (e) => void onSubmit(/** @type {SubmitEvent} */ (e)));
  form.addEventListener("input", () => (resumeKey = null));
  $("ktp_photo").addEventListener("change", onPhotoChosen);
  $("lang-toggle").addEventListener("click", () => {
    view.lang = view.lang === "en" ? "id" : "en";
    render();
  });
  const wanted = new URLSearchParams(location.search).get("lang");
  if (wanted === "en") view.lang = "en";
  render();
  document.body.dataset.ready = "true"; // for tests: the module loaded and the page is wired
}

init();
