import { useState } from "preact/hooks";
import type { AccountForm } from "../bindings";
import { t } from "../i18n";

interface Props {
  locked: string[];
  onSave: (form: AccountForm) => void;
  onCancel: () => void;
}

/// Why a field cannot be changed: managed policy fixes it.
function Locked() {
  return <p class="hint locked">{t("setup.locked")}</p>;
}

export function FirstRun({ locked, onSave, onCancel }: Props) {
  const [form, setForm] = useState<AccountForm>({ registrar: "", user: "", domain: null, password: "" });
  const field = (name: keyof AccountForm) => (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
  const isLocked = (key: string) => locked.includes(key);
  return (
    <section class="first-run-form" aria-labelledby="setup-title">
      <h1 id="setup-title">{t("setup.title")}</h1>
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
        <input id="domain" value={form.domain ?? ""} onInput={field("domain")} disabled={isLocked("sip.domain")} />
        {isLocked("sip.domain") && <Locked />}
        <label for="password">{t("setup.password")}</label>
        <input id="password" data-testid="password-input" type="password" autoComplete="current-password" value={form.password} onInput={field("password")} />
        <div class="actions">
          <button type="submit" class="primary" data-testid="save-account">
            {t("setup.save")}
          </button>
          <button type="button" data-testid="cancel-setup" onClick={onCancel}>
            {t("setup.cancel")}
          </button>
        </div>
      </form>
    </section>
  );
}
