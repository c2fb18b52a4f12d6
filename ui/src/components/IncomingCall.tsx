import { t } from "../i18n";
import { isMac, keyHint } from "../shortcuts";
import type { CallView } from "../state";

export function IncomingCall({ call, onAnswer, onDecline }: { call: CallView; onAnswer: () => void; onDecline: () => void }) {
  const mac = isMac();
  const answer = keyHint("a", mac);
  const decline = keyHint("d", mac);
  return (
    <section class="incoming" aria-labelledby="incoming-title" data-testid="incoming">
      <h1 id="incoming-title" role="alert">
        {t("incoming.title")}
      </h1>
      <p class="peer-name">{call.displayName ?? call.peer}</p>
      {call.displayName && <p class="peer-address">{call.peer}</p>}
      <div class="actions">
        <button type="button" class="primary answer" data-testid="answer-button" onClick={onAnswer} autoFocus aria-keyshortcuts={answer.aria} title={answer.text}>
          {t("incoming.answer")}
        </button>
        <button type="button" class="danger" data-testid="decline-button" onClick={onDecline} aria-keyshortcuts={decline.aria} title={decline.text}>
          {t("incoming.decline")}
        </button>
      </div>
    </section>
  );
}
