// Window-wide call shortcuts: Ctrl+Shift (⌘+Shift on macOS) with A to answer, D to decline or
// hang up, M to mute or unmute, H to hold or resume. They work wherever the focus is (the
// dialler's field included), and only where the button they stand for would. The key is the
// physical one (`code`), so that they work the same in a Russian layout.
import type { CallPhase } from "./state";

export type Shortcut = "answer" | "decline" | "hangup" | "mute" | "hold";

export interface KeyPress {
  /// The physical key: `KeyA`, whatever the layout makes of it.
  code: string;
  ctrlKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  metaKey: boolean;
}

/** The modifier's name on this platform, for hints. */
export function modifierLabel(mac: boolean): string {
  return mac ? "⌘⇧" : "Ctrl+Shift+";
}

/** `aria-keyshortcuts` and the hint for `letter`. */
export function keyHint(letter: string, mac: boolean): { aria: string; text: string } {
  return {
    aria: `${mac ? "Meta" : "Control"}+Shift+${letter.toUpperCase()}`,
    text: `${modifierLabel(mac)}${letter.toUpperCase()}`,
  };
}

/** What `press` does to a call in `phase` (null: nothing, let the key through). */
export function shortcutFor(press: KeyPress, phase: CallPhase | null, mac: boolean): Shortcut | null {
  const modifier = mac ? press.metaKey && !press.ctrlKey : press.ctrlKey && !press.metaKey;
  if (!modifier || !press.shiftKey || press.altKey || phase === null) return null;
  switch (press.code) {
    case "KeyA":
      return phase === "ringing-in" ? "answer" : null;
    case "KeyD":
      if (phase === "ringing-in") return "decline";
      return phase === "dialling" || phase === "ringing-out" || phase === "connected" ? "hangup" : null;
    case "KeyM":
      return phase === "connected" ? "mute" : null;
    case "KeyH":
      return phase === "connected" ? "hold" : null;
    default:
      return null;
  }
}

/** Whether this is a Mac (for ⌘ in place of Ctrl). */
export function isMac(): boolean {
  return typeof navigator !== "undefined" && /Mac/.test(navigator.platform);
}
