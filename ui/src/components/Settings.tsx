import type { M365Account, UiLanguage, UiSection, UiTheme } from "../bindings";
import { t } from "../i18n";

type Key = "ui.language" | "ui.theme";

interface Props {
  ui: UiSection;
  locked: string[];
  onChange: (key: Key, value: string) => void;
  onDone: () => void;
  m365: M365Account | null | undefined | "not-configured";
  onSignOut: () => void;
}

interface Option {
  value: string;
  label: string;
  lang?: string;
}

/// Language names are written in their own language, whatever the window's is.
const LANGUAGE_NAMES: Record<Exclude<UiLanguage, "auto">, string> = { en: "English", ru: "Русский" };
const THEME_KEY: Record<UiTheme, string> = { system: "settings.themeSystem", light: "settings.themeLight", dark: "settings.themeDark" };

/// One setting as a labelled `<select>`; disabled, with the reason, when policy fixes it.
function Choice(props: { id: string; setting: Key; label: string; value: string; options: Option[]; locked: boolean; onChange: Props["onChange"] }) {
  return (
    <>
      <label for={props.id}>{props.label}</label>
      <select
        id={props.id}
        data-testid={`${props.id}-select`}
        value={props.value}
        disabled={props.locked}
        onChange={(e) => props.onChange(props.setting, (e.target as HTMLSelectElement).value)}
      >
        {props.options.map((option) => (
          <option key={option.value} value={option.value} lang={option.lang}>
            {option.label}
          </option>
        ))}
      </select>
      {props.locked && <p class="hint locked">{t("setup.locked")}</p>}
    </>
  );
}

/// The window's own settings.
export function Settings({ ui, locked, onChange, onDone, m365, onSignOut }: Props) {
  const languages: Option[] = [
    { value: "auto", label: t("settings.languageAuto") },
    ...Object.entries(LANGUAGE_NAMES).map(([value, label]) => ({ value, label, lang: value })),
  ];
  const themes: Option[] = (Object.keys(THEME_KEY) as UiTheme[]).map((value) => ({ value, label: t(THEME_KEY[value]) }));
  return (
    <section class="settings" aria-labelledby="settings-title" data-testid="settings">
      <h1 id="settings-title">{t("settings.title")}</h1>
      <Choice id="language" setting="ui.language" label={t("settings.language")} value={ui.language} options={languages} locked={locked.includes("ui.language")} onChange={onChange} />
      <Choice id="theme" setting="ui.theme" label={t("settings.theme")} value={ui.theme} options={themes} locked={locked.includes("ui.theme")} onChange={onChange} />
      <h2 class="settings-group">{t("m365.title")}</h2>
      <p data-testid="m365-status">
        {m365 === "not-configured"
          ? t("m365.notConfigured")
          : m365
            ? t("m365.signedInAs", { name: m365.name, username: m365.username })
            : t("m365.notSignedIn")}
      </p>
      {m365 && m365 !== "not-configured" && (
        <button type="button" data-testid="sign-out-button" onClick={onSignOut}>
          {t("m365.signOut")}
        </button>
      )}
      <div class="actions">
        <button type="button" class="primary" data-testid="settings-done" onClick={onDone}>
          {t("settings.done")}
        </button>
      </div>
    </section>
  );
}
