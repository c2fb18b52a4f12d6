// How the recent-calls list describes a call. Pure: the tests give it records and a clock.
import type { CallRecord } from "./bindings";
import { t } from "./i18n";
import { endText, formatDuration } from "./state";

export type HistoryKind = "missed" | "incoming" | "outgoing";

export function historyKind(record: CallRecord): HistoryKind {
  if (record.direction === "outgoing") return "outgoing";
  // Declined here is not missed: the agent saw it.
  return record.answered || record.cause === "declined" ? "incoming" : "missed";
}

export function kindText(record: CallRecord): string {
  return t(`history.${historyKind(record)}`);
}

/// The call's result: its length when it was answered (and whom it was transferred to), else
/// why it did not connect.
export function resultText(record: CallRecord): string {
  const duration = formatDuration(record.durationSecs * 1000);
  if (record.answered && record.cause === "transferred" && record.detail) return t("history.transferred", { duration, who: record.detail });
  if (record.answered) return duration;
  if (historyKind(record) === "missed") return t("history.notAnswered");
  return endText(record.cause, record.detail);
}

/// "14:05" today, "Yesterday 14:05", else the date and time, in the user's locale.
export function whenText(startedMs: number, nowMs: number, locale?: string): string {
  const started = new Date(startedMs);
  const now = new Date(nowMs);
  const time = started.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  const day = (d: Date) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((day(now) - day(started)) / 86_400_000);
  if (days === 0) return time;
  if (days === 1) return t("history.yesterday", { time });
  return `${started.toLocaleDateString(locale, { day: "numeric", month: "short" })} ${time}`;
}
