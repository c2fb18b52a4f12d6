import type { CallRecord } from "../bindings";
import { historyKind, kindText, resultText, whenText } from "../history";
import { currentLanguage, t } from "../i18n";

interface Props {
  records: CallRecord[];
  now: number;
  onCallBack: (peer: string) => void;
}

/// Recent calls, newest first: who, which way, when, how long (or why not), and Call back.
export function History({ records, now, onCallBack }: Props) {
  return (
    <section class="history" aria-labelledby="history-title" data-testid="history">
      <h2 id="history-title">{t("history.title")}</h2>
      {records.length === 0 ? (
        <p class="empty">{t("history.empty")}</p>
      ) : (
        <ul>
          {records.map((record, i) => {
            const who = record.displayName ?? record.peer;
            const kind = historyKind(record);
            return (
              <li key={`${record.startedMs}-${i}`} class={`history-item ${kind}`} data-testid={`history-item-${i}`}>
                <div class="who">
                  <span class="name">{who}</span>
                  {record.displayName && <span class="address">{record.peer}</span>}
                </div>
                <div class="what">
                  <span class="kind">{kindText(record)}</span> · <span class="when">{whenText(record.startedMs, now, currentLanguage())}</span> ·{" "}
                  <span class="result">{resultText(record)}</span>
                </div>
                <button type="button" class="call-back" onClick={() => onCallBack(record.peer)} aria-label={t("history.callBackWho", { who })} data-testid={`call-back-${i}`}>
                  {t("history.callBack")}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
