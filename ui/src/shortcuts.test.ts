import { describe, expect, it } from "vitest";
import { keyHint, shortcutFor, type KeyPress } from "./shortcuts";

/// A press of the key that says `letter` in an English layout.
const press = (letter: string, mods: Partial<KeyPress> = { ctrlKey: true, shiftKey: true }): KeyPress => ({
  code: `Key${letter.toUpperCase()}`,
  ctrlKey: false,
  shiftKey: false,
  altKey: false,
  metaKey: false,
  ...mods,
});

describe("call shortcuts", () => {
  it("answer and decline a ringing call, and nothing else", () => {
    expect(shortcutFor(press("A"), "ringing-in", false)).toBe("answer");
    expect(shortcutFor(press("d"), "ringing-in", false)).toBe("decline");
    expect(shortcutFor(press("m"), "ringing-in", false)).toBeNull();
    expect(shortcutFor(press("a"), "connected", false)).toBeNull();
  });

  it("hang up, mute and hold a call only where the buttons would", () => {
    expect(shortcutFor(press("d"), "ringing-out", false)).toBe("hangup");
    expect(shortcutFor(press("D"), "connected", false)).toBe("hangup");
    expect(shortcutFor(press("m"), "connected", false)).toBe("mute");
    expect(shortcutFor(press("h"), "connected", false)).toBe("hold");
    expect(shortcutFor(press("m"), "dialling", false)).toBeNull();
    expect(shortcutFor(press("d"), "ended", false)).toBeNull();
    expect(shortcutFor(press("d"), null, false)).toBeNull();
  });

  it("need the platform's modifier with Shift, and no other", () => {
    expect(shortcutFor(press("a", { ctrlKey: true }), "ringing-in", false)).toBeNull();
    expect(shortcutFor(press("a", { shiftKey: true }), "ringing-in", false)).toBeNull();
    expect(shortcutFor(press("a", { ctrlKey: true, shiftKey: true, altKey: true }), "ringing-in", false)).toBeNull();
    expect(shortcutFor(press("a", { metaKey: true, shiftKey: true }), "ringing-in", false)).toBeNull();
    expect(shortcutFor(press("a", { metaKey: true, shiftKey: true }), "ringing-in", true)).toBe("answer");
    expect(shortcutFor(press("a"), "ringing-in", true)).toBeNull();
  });

  it("go by the physical key, so a Russian layout works too", () => {
    // Ctrl+Shift+Ф is the key of A in the ЙЦУКЕН layout.
    const russianA: KeyPress = { code: "KeyA", ctrlKey: true, shiftKey: true, altKey: false, metaKey: false };
    expect(shortcutFor(russianA, "ringing-in", false)).toBe("answer");
    expect(shortcutFor({ ...russianA, code: "KeyQ" }, "ringing-in", false)).toBeNull();
  });

  it("name themselves for screen readers and hints", () => {
    expect(keyHint("a", false)).toEqual({ aria: "Control+Shift+A", text: "Ctrl+Shift+A" });
    expect(keyHint("m", true)).toEqual({ aria: "Meta+Shift+M", text: "⌘⇧M" });
  });
});
