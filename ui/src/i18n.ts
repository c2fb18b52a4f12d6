// The window's words, in English and Russian, through i18next. Every string the window shows
// comes from locales/*.json; the tests check that both languages have every key.
import i18next from "i18next";
import en from "./locales/en.json";
import ru from "./locales/ru.json";

export const LANGUAGES = ["en", "ru"] as const;
export type Language = (typeof LANGUAGES)[number];

/// The language for a BCP 47 tag (the system's, or a setting): Russian for `ru…`, else English.
export function languageFor(tag: string | null | undefined): Language {
  return tag?.toLowerCase().startsWith("ru") ? "ru" : "en";
}

/// The system's language (`ui.language = "auto"`).
export function systemLanguage(): Language {
  return languageFor(typeof navigator === "undefined" ? undefined : navigator.language);
}

i18next.init({
  lng: systemLanguage(),
  fallbackLng: "en",
  resources: { en: { translation: en }, ru: { translation: ru } },
  // Synchronous: the resources are here, and the first render needs them.
  initAsync: false,
  // Preact escapes what it renders.
  interpolation: { escapeValue: false },
  returnNull: false,
  showSupportNotice: false,
});

export const t = i18next.t.bind(i18next);

/// Switches the language (the next render uses it).
export function setLanguage(language: Language): Promise<unknown> {
  return i18next.changeLanguage(language);
}

export function currentLanguage(): Language {
  return languageFor(i18next.language);
}
