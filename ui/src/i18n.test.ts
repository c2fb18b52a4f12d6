/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";
import { currentLanguage, languageFor, setLanguage, t } from "./i18n";
import en from "./locales/en.json";
import ru from "./locales/ru.json";
import { endText, registrationText } from "./state";

type Tree = { [key: string]: string | Tree };

/// Every key of a translation, with its string.
function flatten(tree: Tree, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "string") out.set(path, value);
    else for (const [k, v] of flatten(value, path)) out.set(k, v);
  }
  return out;
}

const variables = (text: string) => [...text.matchAll(/{{(\w+)}}/g)].map((m) => m[1]).sort();

describe("translations", () => {
  const english = flatten(en);
  const russian = flatten(ru);

  it("have the same keys in English and Russian, none empty", () => {
    expect([...russian.keys()].sort()).toEqual([...english.keys()].sort());
    for (const [key, text] of [...english, ...russian]) expect(text.trim(), key).not.toBe("");
  });

  it("use the same placeholders in both languages", () => {
    for (const [key, text] of english) expect(variables(russian.get(key)!), key).toEqual(variables(text));
  });

  it("follow the system's language, Russian for ru-*, else English", () => {
    expect(languageFor("ru-RU")).toBe("ru");
    expect(languageFor("RU")).toBe("ru");
    expect(languageFor("en-GB")).toBe("en");
    expect(languageFor("de-DE")).toBe("en");
    expect(languageFor(undefined)).toBe("en");
  });

  it("switch what the window says", async () => {
    await setLanguage("ru");
    expect(currentLanguage()).toBe("ru");
    expect(registrationText({ state: "registered", registrar: "sip:sbc", expires: 600 })).toBe("Зарегистрирован");
    expect(endText("busy", "486 Busy Here")).toBe("Занято (486 Busy Here)");
    expect(t("call.key", { key: "5" })).toBe("Клавиша 5");
    await setLanguage("en");
    expect(endText("busy", "486 Busy Here")).toBe("Busy (486 Busy Here)");
  });
});

describe("the components", () => {
  // Their source, as text: every word they show must come from the translations.
  const sources = import.meta.glob("./components/*.tsx", { query: "?raw", import: "default", eager: true }) as Record<string, string>;

  it("are all read", () => {
    expect(Object.keys(sources).length).toBeGreaterThanOrEqual(7);
  });

  it("hold no words outside the translations", () => {
    for (const [file, source] of Object.entries(sources)) {
      // JSX text between tags (with its `{…}` expressions taken out), and text attributes a
      // person reads. (`=>` ends an arrow, not a tag; text with `;` or `=` in it is code
      // between a generic's `>` and the next `<`.)
      const text = [...source.matchAll(/(?<!=)>([^<>]*)</g)]
        .map((m) => m[1])
        .filter((w) => !/[;=]/.test(w))
        .map((w) => {
          let out = w;
          while (/{[^{}]*}/.test(out)) out = out.replace(/{[^{}]*}/g, "");
          return out.trim();
        })
        // (What still holds a brace is code around a nested tag, not text.)
        .filter((w) => !/[{}]/.test(w) && /[A-Za-zА-Яа-я]{2,}/.test(w));
      const attributes = [...source.matchAll(/(?:aria-label|title|alt|placeholder)=\{?"([^"]*)"/g)]
        .map((m) => m[1])
        // (An empty alt marks a decorative image: nothing to translate.)
        .filter((w) => w !== "" && !/^sips?:/.test(w));
      const words = [...text, ...attributes];
      expect(words, file).toEqual([]);
    }
  });
});
