import { useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { isMac, keyHint } from "../shortcuts";
import { endText, formatDuration, qualityLabel, transferPending, transferText, type CallView } from "../state";

interface Props {
  call: CallView;
  now: number;
  onHangup: () => void;
  onMute: (muted: boolean) => void;
  onHold: (held: boolean) => void;
  onKey: (key: string) => void;
  /// Transfers the call (blind) to what the user typed; resolves once the phone took it.
  onTransfer: (target: string) => Promise<unknown>;
  onDismiss: () => void;
}

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"];

function phaseText(call: CallView): string {
  switch (call.phase) {
    case "dialling":
      return t("call.calling");
    case "ringing-out":
      return t("call.ringing");
    case "ringing-in":
      return t("call.incoming");
    case "connected":
      if (call.heldHere) return t("call.onHold");
      if (call.heldThere) return t("call.heldThere");
      return call.conference ? t("call.conference") : t("call.connected");
    case "ended":
      if (call.endCause === "transferred" && call.transfer) return transferText(call.transfer);
      return call.endCause ? endText(call.endCause, call.endDetail) : t("end.local");
  }
}

export function ActiveCall({ call, now, onHangup, onMute, onHold, onKey, onTransfer, onDismiss }: Props) {
  const [keypad, setKeypad] = useState(false);
  const [transferOpen, setTransferOpen] = useState(false);
  const transferButton = useRef<HTMLButtonElement>(null);
  // Closing the form gives the focus back to the button that opened it.
  const closeTransfer = () => {
    setTransferOpen(false);
    setTimeout(() => transferButton.current?.focus(), 0);
  };
  const pending = transferPending(call);
  const mac = isMac();
  const [muteKey, holdKey, hangupKey] = [keyHint("m", mac), keyHint("h", mac), keyHint("d", mac)];
  const connected = call.phase === "connected";
  const ended = call.phase === "ended";
  return (
    <section class="active-call" aria-labelledby="call-peer" data-testid="active-call">
      <h1 id="call-peer" class="peer-name" tabIndex={-1}>
        {call.displayName ?? call.peer}
      </h1>
      <p class="call-phase" role="status" aria-live="polite" data-testid="call-phase">
        {phaseText(call)}
      </p>
      <p class="timer" data-testid="call-timer" aria-label={t("call.duration")}>
        {call.answeredAt ? formatDuration(now - call.answeredAt) : "0:00"}
      </p>
      {call.quality && connected && (
        <p class={`quality quality-${qualityLabel(call.quality.mos)}`} data-testid="call-quality">
          <span>{t("call.quality", { label: t(`quality.${qualityLabel(call.quality.mos)}`) })}</span> ·{" "}
          {t("call.qualityLine", {
            mos: call.quality.mos.toFixed(1),
            loss: call.quality.lossPercent.toFixed(1),
            jitter: call.quality.jitterMs.toFixed(1),
          })}
        </p>
      )}
      {call.codec && (
        <p class="media" data-testid="call-media">
          {call.codec} · {call.encrypted ? t("call.encrypted") : t("call.notEncrypted")}
        </p>
      )}
      {ended ? (
        <div class="actions">
          <button type="button" onClick={onDismiss} data-testid="dismiss-button" autoFocus>
            {t("call.back")}
          </button>
        </div>
      ) : (
        <>
          <div class="controls" role="group" aria-label={t("call.controls")}>
            <button type="button" aria-pressed={call.muted} disabled={!connected} data-testid="mute-button" onClick={() => onMute(!call.muted)} aria-keyshortcuts={muteKey.aria} title={muteKey.text}>
              {call.muted ? t("call.unmute") : t("call.mute")}
            </button>
            <button type="button" aria-pressed={call.heldHere} disabled={!connected} data-testid="hold-button" onClick={() => onHold(!call.heldHere)} aria-keyshortcuts={holdKey.aria} title={holdKey.text}>
              {call.heldHere ? t("call.resume") : t("call.hold")}
            </button>
            <button type="button" aria-pressed={keypad} aria-controls={keypad ? "keypad" : undefined} disabled={!connected} data-testid="keypad-button" onClick={() => setKeypad(!keypad)}>
              {t("call.keypad")}
            </button>
            <button
              type="button"
              ref={transferButton}
              aria-expanded={transferOpen}
              aria-controls={transferOpen ? "transfer-form" : undefined}
              disabled={!connected || pending}
              data-testid="transfer-button"
              onClick={() => setTransferOpen(!transferOpen)}
            >
              {t("transfer.button")}
            </button>
          </div>
          {transferOpen && connected && !pending && (
            <TransferForm
              onTransfer={(target) => onTransfer(target).then(closeTransfer)}
              onCancel={closeTransfer}
            />
          )}
          {/* Always there, so that a screen reader hears its first message too. */}
          <p class={`transfer-status${call.transfer?.stage === "failed" || call.transfer?.stage === "refused" ? " problem" : ""}`} role="status" aria-live="polite" data-testid="transfer-status">
            {call.transfer ? transferText(call.transfer) : ""}
          </p>
          {keypad && connected && (
            <div id="keypad" class="keypad" role="group" aria-label={t("call.keypad")} data-testid="keypad">
              {KEYS.map((key) => (
                <button type="button" key={key} data-testid={`key-${key}`} onClick={() => onKey(key)} aria-label={t("call.key", { key })}>
                  {key}
                </button>
              ))}
            </div>
          )}
          <button type="button" class="danger hangup" data-testid="hangup-button" onClick={onHangup} aria-keyshortcuts={hangupKey.aria} title={hangupKey.text}>
            {t("call.hangUp")}
          </button>
        </>
      )}
    </section>
  );
}

/// Where to transfer the call: a number or address, sent with Enter; Escape closes it.
function TransferForm({ onTransfer, onCancel }: { onTransfer: (target: string) => Promise<unknown>; onCancel: () => void }) {
  const [target, setTarget] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = (event: Event) => {
    event.preventDefault();
    if (!target.trim() || busy) return;
    setBusy(true);
    onTransfer(target.trim()).finally(() => setBusy(false));
  };
  return (
    <form id="transfer-form" class="transfer-form" onSubmit={submit} onKeyDown={(e) => e.key === "Escape" && onCancel()} data-testid="transfer-form">
      <label for="transfer-target">{t("transfer.label")}</label>
      <input
        id="transfer-target"
        type="text"
        autocomplete="off"
        spellcheck={false}
        placeholder={t("transfer.placeholder")}
        value={target}
        onInput={(e) => setTarget((e.target as HTMLInputElement).value)}
        data-testid="transfer-target"
        autoFocus
      />
      <button type="submit" disabled={!target.trim() || busy} data-testid="transfer-go">
        {t("transfer.go")}
      </button>
      <button type="button" class="link" onClick={onCancel}>
        {t("transfer.cancel")}
      </button>
    </form>
  );
}
