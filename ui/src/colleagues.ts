// The colleagues panel's logic. Pure: the tests feed it people and presence reports.
import type { Person, PresenceOf, PresenceReport } from "./bindings";
import { t } from "./i18n";

/// Presence by object id, as the last reports left it.
export type Presences = ReadonlyMap<string, PresenceOf>;

/// Folds one report into what is known.
export function applyReport(known: Presences, report: PresenceReport): Presences {
  if (report.changed.length === 0) return known;
  const next = new Map(known);
  for (const presence of report.changed) next.set(presence.id, presence);
  return next;
}

/// The colour class of a presence dot (Teams' colours: green, yellow, red, grey).
export type PresenceClass = "available" | "away" | "busy" | "dnd" | "offline" | "unknown";

export function presenceClass(availability: string | undefined): PresenceClass {
  switch (availability) {
    case "Available":
    case "AvailableIdle":
      return "available";
    case "Away":
    case "BeRightBack":
      return "away";
    case "Busy":
    case "BusyIdle":
      return "busy";
    case "DoNotDisturb":
      return "dnd";
    case "Offline":
      return "offline";
    default:
      return "unknown";
  }
}

/// Activities Teams reports that the panel names; others fall back to the availability.
const ACTIVITIES = new Set([
  "Available", "Away", "BeRightBack", "Busy", "DoNotDisturb", "InACall", "InAConferenceCall", "Inactive",
  "InAMeeting", "Offline", "OffWork", "OutOfOffice", "Presenting", "UrgentInterruptionsOnly",
]);
const AVAILABILITIES = new Set(["Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle", "DoNotDisturb", "Offline"]);

/// What a presence says in words: the activity ("In a call") when it is one the panel knows,
/// else the availability; "Presence unknown" before the first poll.
export function presenceText(presence: PresenceOf | undefined): string {
  if (!presence) return t("presence.unknown");
  if (ACTIVITIES.has(presence.activity)) return t(`presence.${presence.activity}`);
  if (AVAILABILITIES.has(presence.availability)) return t(`presence.${presence.availability}`);
  return t("presence.unknown");
}

/// The ids whose presence the panel needs: favourites, then search results, each once.
export function watchedIds(favourites: readonly Person[], results: readonly Person[]): string[] {
  return [...new Set([...favourites, ...results].map((p) => p.id))];
}

/// Two or fewer letters for a person without a photo: "Adele Vance" → "AV".
export function initials(name: string): string {
  const words = name.split(/[\s.@_-]+/).filter((w) => /\p{L}/u.test(w));
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words.slice(0, 1);
  return letters.map((w) => [...w][0].toUpperCase()).join("") || "?";
}

/// A second line about the person: job title and department when known, else their address.
export function detailText(person: Person): string {
  const work = [person.jobTitle, person.department].filter((x): x is string => !!x).join(", ");
  return work || person.username || person.mail || "";
}

/// Same ids, same order: the presence watch need not be told again.
export function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}
