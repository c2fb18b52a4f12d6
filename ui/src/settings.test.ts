import { describe, expect, it } from "vitest";
import type { AppStatus } from "./bindings";
import { withSetting } from "./settings";

const status: AppStatus = {
  version: "0.1.0", phoneReady: true, phoneError: null, registration: null, account: null, demo: null, audio: null,
  locked: [], shortcuts: [], ui: { language: "auto", theme: "system", autostart: false },
  calls: { input: "default", output: "default", ringer: "default", codecs: "opus,g722,pcmu,pcma", srtp: "preferred" },
};

describe("a setting being saved", () => {
  it("shows at once, leaving the rest alone", () => {
    expect(withSetting(status, "ui.language", "ru").ui).toEqual({ language: "ru", theme: "system", autostart: false });
    expect(withSetting(status, "ui.autostart", "true").ui.autostart).toBe(true);
    expect(withSetting(status, "media.srtp", "required").calls.srtp).toBe("required");
    const ringer = withSetting(status, "audio.ringer", "pulseaudio:speakers");
    expect(ringer.calls).toEqual({ ...status.calls, ringer: "pulseaudio:speakers" });
    expect(ringer.ui).toBe(status.ui);
    expect(status.calls.ringer).toBe("default");
  });
});
