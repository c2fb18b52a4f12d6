// The phone's commands and events, through the generated bindings (bindings.ts).
import { commands, events } from "./bindings";
import type { CommandError, PhoneEvent, PresenceReport, Result } from "./bindings";
import { t } from "./i18n";

export { commands };

/// A failed command, with the kind the Rust side gave it.
export class CommandFailed extends Error {
  constructor(readonly error: CommandError) {
    super("message" in error ? String(error.message) : t(`error.${error.kind}`));
  }
}

/// Unwraps a command's result, throwing [`CommandFailed`] on an error.
export async function run<T>(result: Promise<Result<T, CommandError>>): Promise<T> {
  const answer = await result;
  if (answer.status === "error") throw new CommandFailed(answer.error);
  return answer.data;
}

/// Calls `handler` with every phone event, in order; returns the way to stop listening.
export function onPhoneEvent(handler: (event: PhoneEvent) => void): Promise<() => void> {
  return events.phoneUpdate.listen((message) => handler(message.payload as PhoneEvent));
}

/// Calls `handler` with the dialler's text of every link the app is opened with while it runs.
export function onLink(handler: (text: string) => void): Promise<() => void> {
  return events.linkUpdate.listen((message) => handler(message.payload as string));
}

/// Calls `handler` with every presence report; returns the way to stop listening.
export function onPresence(handler: (report: PresenceReport) => void): Promise<() => void> {
  return events.presenceUpdate.listen((message) => handler(message.payload as PresenceReport));
}
