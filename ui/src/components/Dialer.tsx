import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";

interface Props {
  hasAccount: boolean;
  demo: string | null;
  onDial: (text: string) => void;
  onNormalize: (text: string) => Promise<string>;
  onDemo: () => void;
  onSetup: () => void;
  /// A link the app was opened with: put in the field (a new `seq` each time), ready to call.
  prefill: { text: string; seq: number } | null;
}

export function Dialer({ hasAccount, demo, onDial, onNormalize, onDemo, onSetup, prefill }: Props) {
  const [text, setText] = useState("");
  const [preview, setPreview] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);

  const check = (value: string) => {
    if (!value.trim()) {
      setPreview(null);
      setProblem(null);
      return;
    }
    onNormalize(value).then(
      (uri) => {
        setPreview(uri);
        setProblem(null);
      },
      (e) => {
        setPreview(null);
        setProblem(e.message ?? String(e));
      },
    );
  };

  useEffect(() => {
    if (!prefill) return;
    setText(prefill.text);
    check(prefill.text);
    input.current?.focus();
  }, [prefill?.seq]);

  const submit = (event: Event) => {
    event.preventDefault();
    if (text.trim()) onDial(text);
  };

  return (
    <section class="dialer" aria-labelledby="dialer-title">
      <h1 id="dialer-title">{t("dialer.title")}</h1>
      <form onSubmit={submit}>
        <label for="dial-input">{t("dialer.label")}</label>
        <input
          id="dial-input"
          ref={input}
          data-testid="dial-input"
          type="text"
          inputMode="tel"
          autoComplete="off"
          autoFocus
          placeholder={t("dialer.placeholder")}
          value={text}
          onInput={(e) => {
            const value = (e.target as HTMLInputElement).value;
            setText(value);
            check(value);
          }}
          onPaste={(e) => {
            // Pasted numbers ("(425) 555-0100 ext. 7") are shown as they will be dialled.
            const pasted = e.clipboardData?.getData("text") ?? "";
            if (pasted) setTimeout(() => check(pasted), 0);
          }}
          aria-describedby="dial-preview"
        />
        <p id="dial-preview" class={problem ? "hint problem" : "hint"} data-testid="dial-preview" aria-live="polite">
          {problem ?? (preview ? t("dialer.preview", { uri: preview }) : "")}
        </p>
        <button type="submit" class="primary" data-testid="dial-button" disabled={!text.trim()}>
          {t("dialer.call")}
        </button>
      </form>
      {!hasAccount && (
        <div class="first-run" data-testid="first-run">
          <p>{demo ? t("dialer.demoRunning") : t("dialer.noAccount")}</p>
          <button type="button" data-testid="demo-button" onClick={onDemo}>
            {t("dialer.callDemo")}
          </button>
          <button type="button" class="link" data-testid="setup-button" onClick={onSetup}>
            {t("dialer.setup")}
          </button>
        </div>
      )}
    </section>
  );
}
