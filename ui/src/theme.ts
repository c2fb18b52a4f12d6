// Light or dark: the `ui.theme` setting, or the system's preference while it says "system".
import type { UiTheme } from "./bindings";

export function effectiveTheme(setting: UiTheme, systemDark: boolean): "light" | "dark" {
  if (setting === "system") return systemDark ? "dark" : "light";
  return setting;
}

const darkQuery = typeof window !== "undefined" && window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
let current: UiTheme = "system";

function paint() {
  document.documentElement.dataset.theme = effectiveTheme(current, darkQuery?.matches ?? false);
}

/// Applies `setting` now, and follows the system while it is "system".
export function applyTheme(setting: UiTheme) {
  current = setting;
  paint();
}

darkQuery?.addEventListener("change", paint);
