import type { AppStatus, M365Account, PresenceOf, Registration } from "../bindings";
import { presenceClass, presenceText } from "../colleagues";
import { t } from "../i18n";
import { registrationText } from "../state";

interface Props {
  status: AppStatus | null;
  registration: Registration | null;
  onSettings: () => void;
  /// `undefined` while it is not known yet.
  m365: M365Account | null | undefined | "not-configured";
  /// The signed-in user's Teams presence, once polled.
  ownPresence: PresenceOf | null;
  signingIn: boolean;
  onSignIn: () => void;
}

export function StatusBar({ status, registration, onSettings, m365, ownPresence, signingIn, onSignIn }: Props) {
  const state = registration?.state ?? "starting";
  const text = status?.phoneError ? t("status.phoneNotStarted", { error: status.phoneError }) : registrationText(registration);
  return (
    <header class="status-bar" data-testid="status-bar">
      <span class={`dot dot-${status?.phoneError ? "failed" : state}`} aria-hidden="true" />
      <span class="status-text" role="status" aria-live="polite" data-testid="registration">
        {text}
      </span>
      <span class="status-account" data-testid="account">
        {status?.account?.address ?? (status?.demo ? t("status.demo") : "")}
      </span>
      {status?.audio && (
        <span class="status-audio" title={status.audio} data-testid="audio">
          {status.audio.startsWith("no sound") ? t("status.noAudio") : t("status.audio")}
          <span class="visually-hidden">: {status.audio}</span>
        </span>
      )}
      {m365 && m365 !== "not-configured" && (
        <span class="status-m365" data-testid="m365-account" title={m365.username}>
          {ownPresence && <span class={`presence-dot inline presence-${presenceClass(ownPresence.availability)}`} aria-hidden="true" />}
          {m365.name}
          {ownPresence && (
            <span class="own-presence" data-testid="own-presence">
              {" · "}
              {presenceText(ownPresence)}
            </span>
          )}
        </span>
      )}
      {m365 === null && (
        <button type="button" class="link" data-testid="sign-in-button" disabled={signingIn} onClick={onSignIn}>
          {signingIn ? t("m365.signingInShort") : t("m365.signIn")}
        </button>
      )}
      <button type="button" class="settings-button" data-testid="settings-button" aria-label={t("settings.open")} title={t("settings.open")} onClick={onSettings}>
        ⚙
      </button>
    </header>
  );
}
