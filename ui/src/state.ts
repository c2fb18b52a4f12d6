// The call screen's state, reduced from the phone's events. Pure: the tests feed it events.
import type { EndCause, PhoneEvent, Registration, TransferStage } from "./bindings";
import { t } from "./i18n";

export type CallPhase = "ringing-in" | "dialling" | "ringing-out" | "connected" | "ended";

export interface Quality {
  mos: number;
  lossPercent: number;
  jitterMs: number;
  rttMs: number | null;
}

export interface CallView {
  call: number;
  direction: "in" | "out";
  /// The other party: their SIP address or number.
  peer: string;
  displayName: string | null;
  phase: CallPhase;
  /// Milliseconds since the epoch when it was answered.
  answeredAt: number | null;
  muted: boolean;
  heldHere: boolean;
  heldThere: boolean;
  conference: boolean;
  codec: string | null;
  encrypted: boolean;
  quality: Quality | null;
  endCause: EndCause | null;
  endDetail: string;
  /// Keys the far end pressed.
  keysReceived: string;
  /// The latest transfer of this call, as far as it got.
  transfer: TransferView | null;
}

export interface TransferView {
  target: string;
  /// Whom the target is, when the transfer was to a colleague (shown instead of the address).
  name: string | null;
  stage: TransferStage;
  /// The SIP status behind the stage, when there is one.
  detail: string;
}

export interface PhoneState {
  registration: Registration | null;
  calls: CallView[];
}

export const initialState: PhoneState = { registration: null, calls: [] };

function newCall(call: number, direction: "in" | "out", peer: string, displayName: string | null, phase: CallPhase): CallView {
  return {
    call, direction, peer, displayName, phase,
    answeredAt: null, muted: false, heldHere: false, heldThere: false, conference: false,
    codec: null, encrypted: false, quality: null, endCause: null, endDetail: "", keysReceived: "",
    transfer: null,
  };
}

function update(state: PhoneState, call: number, change: (view: CallView) => CallView): PhoneState {
  if (!state.calls.some((c) => c.call === call)) return state;
  return { ...state, calls: state.calls.map((c) => (c.call === call ? change(c) : c)) };
}

/// Applies one event from the phone; `now` is the wall clock in milliseconds.
export function reduce(state: PhoneState, event: PhoneEvent, now: number): PhoneState {
  switch (event.kind) {
    case "registration":
      return { ...state, registration: event.registration };
    case "incoming":
      return { ...state, calls: [...state.calls.filter((c) => c.call !== event.call), newCall(event.call, "in", event.from, event.display_name, "ringing-in")] };
    case "dialling":
      return { ...state, calls: [...state.calls.filter((c) => c.call !== event.call), newCall(event.call, "out", event.to, null, "dialling")] };
    case "ringing":
      return update(state, event.call, (c) => (c.phase === "dialling" ? { ...c, phase: "ringing-out" } : c));
    case "answered":
      return update(state, event.call, (c) => ({ ...c, phase: "connected", answeredAt: c.answeredAt ?? now }));
    case "media":
      return update(state, event.call, (c) => ({ ...c, codec: event.codec, encrypted: event.encrypted }));
    case "hold":
      return update(state, event.call, (c) => ({ ...c, heldHere: event.local, heldThere: event.remote }));
    case "mute":
      return update(state, event.call, (c) => ({ ...c, muted: event.muted }));
    case "conference":
      return update(state, event.call, (c) => ({ ...c, conference: event.focus }));
    case "quality":
      return update(state, event.call, (c) => ({
        ...c,
        quality: { mos: event.mos, lossPercent: event.loss_percent, jitterMs: event.jitter_ms, rttMs: event.rtt_ms },
      }));
    case "dtmf":
      return update(state, event.call, (c) => ({ ...c, keysReceived: (c.keysReceived + event.key).slice(-24) }));
    case "transfer":
      return update(state, event.call, (c) => ({ ...c, transfer: { target: event.target, name: event.name, stage: event.stage, detail: event.detail } }));
    case "ended":
      return update(state, event.call, (c) => ({ ...c, phase: "ended", endCause: event.cause, endDetail: event.detail }));
  }
}

/// The transfer's progress in words.
export function transferText(transfer: TransferView): string {
  const target = transfer.name ?? transfer.target;
  switch (transfer.stage) {
    case "asked":
    case "accepted":
      return t("transfer.calling", { target });
    case "ringing":
      return t("transfer.ringing", { target });
    case "succeeded":
      return t("transfer.succeeded", { target });
    case "refused":
      return t(transfer.detail ? "transfer.refusedWith" : "transfer.refused", { status: transfer.detail });
    case "failed":
      return t(failedKey(transfer.detail), { target, status: transfer.detail });
  }
}

/// What a failed transfer's SIP status says to the agent.
function failedKey(status: string): string {
  switch (status) {
    case "486":
    case "600":
      return "transfer.failedBusy";
    case "603":
      return "transfer.failedDeclined";
    case "404":
    case "604":
    case "484":
      return "transfer.failedNotFound";
    case "":
      return "transfer.failed";
    default:
      return "transfer.failedWith";
  }
}

/// A transfer still waiting for its outcome (another cannot start meanwhile).
export function transferPending(call: CallView): boolean {
  const stage = call.transfer?.stage;
  return stage === "asked" || stage === "accepted" || stage === "ringing";
}

/// Forgets a finished call (after its summary has been shown).
export function dismiss(state: PhoneState, call: number): PhoneState {
  return { ...state, calls: state.calls.filter((c) => c.call !== call || c.phase !== "ended") };
}

/// The call the screen is about: a ringing incoming call first, else the newest live one, else
/// the newest ended one.
export function focusCall(state: PhoneState): CallView | null {
  const live = state.calls.filter((c) => c.phase !== "ended");
  return live.find((c) => c.phase === "ringing-in") ?? live[live.length - 1] ?? state.calls[state.calls.length - 1] ?? null;
}

/// `m:ss`, or `h:mm:ss` past an hour.
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/// What a MOS estimate means to an agent.
export function qualityLabel(mos: number): "good" | "fair" | "poor" {
  return mos >= 4.0 ? "good" : mos >= 3.4 ? "fair" : "poor";
}

export function endText(cause: EndCause, detail: string): string {
  const text = t(`end.${cause}`);
  return detail && cause !== "local" && cause !== "remote" ? t("end.withDetail", { text, detail }) : text;
}

export function registrationText(registration: Registration | null): string {
  if (!registration) return t("status.starting");
  switch (registration.state) {
    case "none":
      return t("status.noAccount");
    case "registering":
      return t("status.registering");
    case "registered":
      return t("status.registered");
    case "failed":
      return t(registration.retrying ? "status.failedRetrying" : "status.failed", { reason: registration.reason });
  }
}
