import { useState } from "preact/hooks";
import type { AccountForm } from "../bindings";
import { t } from "../i18n";

interface Props {
  locked: string[];
  /// The account as it is now, when changing one (the password field then keeps the stored
  /// password unless something is typed).
  current: AccountForm | null;
  onSave: (form: AccountForm) => void;
  /// Registers once with what the form holds; resolves to what the registrar said.
  onTest: (form: AccountForm) => Promise<string>;
  onCancel: () => void;
}

type Test = { state: "testing" } | { state: "ok"; message: string } | { state: "failed"; message: string };

/// Why a field cannot be changed: managed policy fixes it.
function Locked() {
  return <p class="hint locked">{t("setup.locked")}</p>;
}

export function FirstRun({ locked, current, onSave, onTest, onCancel }: Props) {
  const [form, setForm] = useState<AccountForm>(current ?? { registrar: "", user: "", domain: null, password: "" });
  const [test, setTest] = useState<Test | null>(null);
  const field = (name: keyof AccountForm) => (e: Event) => {
    setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
    setTest(null);
  };
  const runTest = () => {
    setTest({ state: "testing" });
    onTest(form).then(
      (message) => setTest({ state: "ok", message }),
      (e) => setTest({ state: "failed", message: e instanceof Error ? e.message : String(e) }),
    );
  };
  const isLocked = (key: string) => locked.includes(key);
  return (
    <section class="first-run-form" aria-labelledby="setup-title">
      <h1 id="setup-title">{current ? t("setup.changeTitle") : t("setup.title")}</h1>
      <p class="hint">{t("setup.hint")}</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onSave(form);
        }}
      >
        <label for="registrar">{t("setup.registrar")}</label>
        <input id="registrar" data-testid="registrar-input" required placeholder="sip:sbc.example.com;transport=tls" value={form.registrar} onInput={field("registrar")} disabled={isLocked("sip.registrar")} />
        {isLocked("sip.registrar") && <Locked />}
        <label for="user">{t("setup.user")}</label>
        <input id="user" data-testid="user-input" required value={form.user} onInput={field("user")} disabled={isLocked("sip.user")} />
        {isLocked("sip.user") && <Locked />}
        <label for="domain">{t("setup.domain")}</label>
        <input id="domain" data-testid="domain-input" value={form.domain ?? ""} onInput={field("domain")} disabled={isLocked("sip.domain")} />
        {isLocked("sip.domain") && <Locked />}
        <label for="password">{t("setup.password")}</label>
        <input id="password" data-testid="password-input" type="password" autoComplete="current-password" value={form.password} onInput={field("password")} placeholder={current ? t("setup.passwordKept") : undefined} />
        <p class={`hint${test?.state === "failed" ? " problem" : ""}`} role="status" aria-live="polite" data-testid="account-test">
          {test?.state === "testing" ? t("setup.testing") : test?.state === "ok" ? t("setup.testOk", { message: test.message }) : test?.state === "failed" ? t("setup.testFailed", { message: test.message }) : ""}
        </p>
        <div class="actions">
          <button type="submit" class="primary" data-testid="save-account">
            {t("setup.save")}
          </button>
          <button type="button" data-testid="test-account" disabled={!form.registrar.trim() || !form.user.trim() || test?.state === "testing"} onClick={runTest}>
            {t("setup.test")}
          </button>
          <button type="button" data-testid="cancel-setup" onClick={onCancel}>
            {t("setup.cancel")}
          </button>
        </div>
      </form>
    </section>
  );
}
