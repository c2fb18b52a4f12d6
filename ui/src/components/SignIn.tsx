import { useState } from "preact/hooks";
import type { DeviceCodeView } from "../bindings";
import { t } from "../i18n";

/// A Microsoft 365 sign-in under way: in the browser, or with a code entered on another device.
export type SignInProgress = { mode: "browser" } | { mode: "code"; code: DeviceCodeView };

interface Props {
  progress: SignInProgress;
  onUseCode: () => void;
  onCancel: () => void;
}

/// What to do to finish signing in, with a way to a code when the browser is no use here, and
/// a way out.
export function SignIn({ progress, onUseCode, onCancel }: Props) {
  const [copied, setCopied] = useState(false);
  return (
    <section class="sign-in" aria-labelledby="sign-in-title" data-testid="sign-in">
      <h2 id="sign-in-title">{t("m365.title")}</h2>
      {progress.mode === "browser" ? (
        <p role="status" aria-live="polite">
          {t("m365.signingIn")}
        </p>
      ) : (
        <>
          <p role="status" aria-live="polite">
            {t("m365.codeHowTo", { uri: progress.code.verificationUri })}
          </p>
          <p class="device-code">
            <code data-testid="device-code">{progress.code.userCode}</code>
            <button
              type="button"
              onClick={() =>
                navigator.clipboard?.writeText(progress.code.userCode).then(
                  () => setCopied(true),
                  () => setCopied(false),
                )
              }
            >
              {t("m365.copyCode")}
            </button>
            <span role="status" class="copied">
              {copied ? t("m365.copied") : ""}
            </span>
          </p>
          <p class="hint">{t("m365.codeExpires", { minutes: Math.max(1, Math.round(progress.code.expiresInSecs / 60)) })}</p>
        </>
      )}
      <div class="actions">
        {progress.mode === "browser" && (
          <button type="button" data-testid="use-code-button" onClick={onUseCode}>
            {t("m365.useCode")}
          </button>
        )}
        <button type="button" class="link" data-testid="cancel-sign-in" onClick={onCancel}>
          {t("m365.cancel")}
        </button>
      </div>
    </section>
  );
}
