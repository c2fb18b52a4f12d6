// The settings screen's bookkeeping. Pure: the tests give it statuses.
import type { AppStatus, SrtpSetting, UiLanguage, UiTheme } from "./bindings";

/// The settings the window changes (`set_setting`'s keys).
export type SettingKey = "ui.language" | "ui.theme" | "ui.autostart" | "audio.input" | "audio.output" | "audio.ringer" | "media.codecs" | "media.srtp";

/// `status` as it will be once `key` is saved as `value`: shown at once, so that a select does
/// not jump back to the old value while the phone restarts (a refused change is undone by the
/// status that follows).
export function withSetting(status: AppStatus, key: SettingKey, value: string): AppStatus {
  switch (key) {
    case "ui.language":
      return { ...status, ui: { ...status.ui, language: value as UiLanguage } };
    case "ui.theme":
      return { ...status, ui: { ...status.ui, theme: value as UiTheme } };
    case "ui.autostart":
      return { ...status, ui: { ...status.ui, autostart: value === "true" } };
    case "audio.input":
      return { ...status, calls: { ...status.calls, input: value } };
    case "audio.output":
      return { ...status, calls: { ...status.calls, output: value } };
    case "audio.ringer":
      return { ...status, calls: { ...status.calls, ringer: value } };
    case "media.codecs":
      return { ...status, calls: { ...status.calls, codecs: value } };
    case "media.srtp":
      return { ...status, calls: { ...status.calls, srtp: value as SrtpSetting } };
  }
}
