import { useEffect, useState } from "preact/hooks";
import type { CallSettings, M365Account, ShortcutStatus, SoundDevice, SoundLevels, SoundTest, SrtpSetting, UiLanguage, UiSection, UiTheme } from "../bindings";
import { CODEC_NAMES, codecRows, moveCodec, toggleCodec } from "../codecs";
import { t } from "../i18n";
import type { SettingKey as Key } from "../settings";

interface Props {
  ui: UiSection;
  calls: CallSettings;
  /// The sound devices there are (null while they are being listed).
  devices: SoundDevice[] | null;
  locked: string[];
  /// A change on its way (the phone restarts with calls' settings), or saved.
  saving: "saving" | "saved" | null;
  onChange: (key: Key, value: string) => void;
  onDone: () => void;
  m365: M365Account | null | undefined | "not-configured";
  onSignOut: () => void;
  sound: SoundCheckProps;
  /// The SIP account's address, if there is one.
  account: string | null;
  /// Opens the account form (with a connection test).
  onChangeAccount: () => void;
  /// The global shortcuts, and why one is not taken.
  shortcuts: ShortcutStatus[];
}

interface SoundCheckProps {
  /// The peaks since last asked; `metering` keeps the microphone open for the meter.
  levels: (metering: boolean) => Promise<SoundLevels>;
  /// Plays a test sound; resolves when it is over.
  test: (sound: SoundTest) => Promise<void>;
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
export function Settings({ ui, calls, devices, locked, saving, onChange, onDone, m365, onSignOut, sound, account, onChangeAccount, shortcuts }: Props) {
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
      <label class="check">
        <input
          type="checkbox"
          data-testid="autostart"
          checked={ui.autostart}
          disabled={locked.includes("ui.autostart")}
          aria-describedby={locked.includes("ui.autostart") ? "autostart-locked" : undefined}
          onChange={(e) => onChange("ui.autostart", String((e.target as HTMLInputElement).checked))}
        />
        {t("settings.autostart")}
      </label>
      {locked.includes("ui.autostart") && (
        <p id="autostart-locked" class="hint locked">
          {t("setup.locked")}
        </p>
      )}
      <h2 class="settings-group">{t("settings.sound")}</h2>
      <Choice id="microphone" setting="audio.input" label={t("settings.microphone")} value={calls.input} options={deviceOptions(devices, true, calls.input)} locked={locked.includes("audio.input")} onChange={onChange} />
      <Choice id="speaker" setting="audio.output" label={t("settings.speaker")} value={calls.output} options={deviceOptions(devices, false, calls.output)} locked={locked.includes("audio.output")} onChange={onChange} />
      <Choice id="ringer" setting="audio.ringer" label={t("settings.ringer")} value={calls.ringer} options={deviceOptions(devices, false, calls.ringer)} locked={locked.includes("audio.ringer")} onChange={onChange} />
      <SoundCheck {...sound} />
      <h2 class="settings-group">{t("settings.calls")}</h2>
      <Codecs list={calls.codecs} locked={locked.includes("media.codecs")} onChange={(list) => onChange("media.codecs", list)} />
      <Choice id="srtp" setting="media.srtp" label={t("settings.srtp")} value={calls.srtp} options={SRTP.map((value) => ({ value, label: t(`settings.srtp_${value}`) }))} locked={locked.includes("media.srtp")} onChange={onChange} />
      <p class="hint">{t("settings.callsRestart")}</p>
      <p class="hint" role="status" aria-live="polite" data-testid="settings-saved">
        {saving === "saving" ? t("settings.saving") : saving === "saved" ? t("settings.saved") : ""}
      </p>
      <h2 class="settings-group">{t("settings.globalShortcuts")}</h2>
      <ul class="shortcuts" data-testid="global-shortcuts">
        {shortcuts.map((s) => (
          <li key={s.action}>
            {t(`settings.shortcut_${s.action}`)}: <kbd>{s.keys || t("settings.shortcutOff")}</kbd>
            {s.problem && <span class="hint problem"> — {s.problem}</span>}
          </li>
        ))}
      </ul>
      <p class="hint">{t("settings.shortcutsHint")}</p>
      <h2 class="settings-group">{t("settings.sipAccount")}</h2>
      <p data-testid="sip-account">{account ?? t("settings.noSipAccount")}</p>
      <button type="button" data-testid="change-account" onClick={onChangeAccount}>
        {account ? t("settings.changeAccount") : t("settings.setUpAccount")}
      </button>
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

const SRTP: SrtpSetting[] = ["preferred", "required", "off"];

/// The meter's floor: quieter than this shows as silence.
const FLOOR_DB = -60;
/// How fast the meter falls back, per reading (every 100 ms): about 30 dB a second.
const FALL_DB = 3;

/// The microphone's level, read every 100 ms while the settings are open, and test sounds for
/// the speaker and the ringer.
function SoundCheck({ levels, test }: SoundCheckProps) {
  const [level, setLevel] = useState<number | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [playing, setPlaying] = useState<SoundTest | null>(null);
  // The microphone opens only when asked (the system shows it in use while it is).
  const [metering, setMetering] = useState(false);
  useEffect(() => {
    if (!metering) {
      setLevel(null);
      return;
    }
    let shown = FLOOR_DB;
    let stopped = false;
    const read = () =>
      levels(true).then(
        (l) => {
          if (stopped) return;
          // Peaks show at once and fall back slowly, as on any level meter.
          shown = Math.max(Math.max(l.microphoneDbfs, FLOOR_DB), shown - FALL_DB);
          setLevel(Math.round(shown));
          setProblem(null);
        },
        (e) => !stopped && setProblem(e instanceof Error ? e.message : String(e)),
      );
    read();
    const timer = setInterval(read, 100);
    return () => {
      stopped = true;
      clearInterval(timer);
      levels(false).catch(() => {});
    };
  }, [metering]);
  const play = (sound: SoundTest) => {
    setPlaying(sound);
    test(sound)
      .catch((e) => setProblem(e instanceof Error ? e.message : String(e)))
      .finally(() => setPlaying(null));
  };
  return (
    <div class="sound-check" data-testid="sound-check">
      <label for="mic-level">{t("settings.micLevel")}</label>
      <div class="level">
        <meter id="mic-level" data-testid="mic-level" min={FLOOR_DB} max={0} low={-40} high={-6} optimum={-18} value={level ?? FLOOR_DB} />
        <span class="level-text" data-testid="mic-level-text">
          {!metering ? t("settings.meterOff") : level === null || level <= FLOOR_DB ? t("settings.silent") : t("settings.levelDb", { db: level })}
        </span>
      </div>
      <div class="actions">
        <button type="button" data-testid="test-microphone" aria-pressed={metering} aria-controls="mic-level" onClick={() => setMetering(!metering)}>
          {t("settings.testMicrophone")}
        </button>
        <button type="button" data-testid="test-speaker" disabled={playing !== null} onClick={() => play("speaker")}>
          {playing === "speaker" ? t("settings.playing") : t("settings.testSpeaker")}
        </button>
        <button type="button" data-testid="test-ringer" disabled={playing !== null} onClick={() => play("ringer")}>
          {playing === "ringer" ? t("settings.playing") : t("settings.testRinger")}
        </button>
      </div>
      {problem && (
        <p class="hint problem" data-testid="sound-problem">
          {problem}
        </p>
      )}
    </div>
  );
}

/// "System default", the devices of one direction, and the chosen one when it is not there now
/// (unplugged, or chosen by a name).
function deviceOptions(devices: SoundDevice[] | null, input: boolean, current: string): Option[] {
  const listed = (devices ?? []).filter((d) => d.input === input);
  const options: Option[] = [{ value: "default", label: t("settings.systemDefault") }, ...listed.map((d) => ({ value: d.id, label: d.name }))];
  if (!options.some((o) => o.value === current)) options.push({ value: current, label: t("settings.notConnected", { name: current }) });
  return options;
}

/// The codecs: each on or off, the enabled ones in order of preference (moved with ↑ ↓).
function Codecs({ list, locked, onChange }: { list: string; locked: boolean; onChange: (list: string) => void }) {
  const rows = codecRows(list);
  const change = (next: string | null) => next !== null && onChange(next);
  return (
    <fieldset class="codecs" data-testid="codecs" disabled={locked}>
      <legend>{t("settings.codecs")}</legend>
      <ol>
        {rows.map(({ codec, enabled }, i) => (
          <li key={codec} class={enabled ? "" : "off"}>
            <label>
              <input type="checkbox" checked={enabled} data-testid={`codec-${codec}`} onChange={(e) => change(toggleCodec(list, codec, (e.target as HTMLInputElement).checked))} />
              {CODEC_NAMES[codec]}
            </label>
            {enabled && (
              <span class="move">
                <button type="button" aria-label={t("settings.codecUp", { codec: CODEC_NAMES[codec] })} disabled={i === 0} onClick={() => change(moveCodec(list, codec, -1))}>
                  ↑
                </button>
                <button type="button" aria-label={t("settings.codecDown", { codec: CODEC_NAMES[codec] })} disabled={!rows[i + 1]?.enabled} onClick={() => change(moveCodec(list, codec, 1))}>
                  ↓
                </button>
              </span>
            )}
          </li>
        ))}
      </ol>
      {locked && <p class="hint locked">{t("setup.locked")}</p>}
    </fieldset>
  );
}
