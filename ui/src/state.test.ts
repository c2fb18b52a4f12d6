import { describe, expect, it } from "vitest";
import type { PhoneEvent } from "./bindings";
import { dismiss, endText, focusCall, formatDuration, initialState, qualityLabel, reduce, registrationText, transferPending, transferText } from "./state";

const play = (events: PhoneEvent[], start = 1000) => events.reduce((state, event, i) => reduce(state, event, start + i * 1000), initialState);

describe("the call screen's state", () => {
  it("follows an outgoing call from dialling to its end", () => {
    let state = play([
      { kind: "dialling", call: 1, to: "sip:demo@127.0.0.1:5062" },
      { kind: "ringing", call: 1 },
      { kind: "answered", call: 1 },
      { kind: "media", call: 1, codec: "opus/48000/2", encrypted: true },
    ]);
    const call = focusCall(state)!;
    expect(call.phase).toBe("connected");
    expect(call.answeredAt).toBe(3000);
    expect(call.codec).toBe("opus/48000/2");
    state = reduce(state, { kind: "hold", call: 1, local: true, remote: false }, 5000);
    expect(focusCall(state)!.heldHere).toBe(true);
    state = reduce(state, { kind: "mute", call: 1, muted: true }, 5000);
    expect(focusCall(state)!.muted).toBe(true);
    state = reduce(state, { kind: "ended", call: 1, cause: "remote", detail: "" }, 6000);
    expect(focusCall(state)!.phase).toBe("ended");
    expect(dismiss(state, 1).calls).toHaveLength(0);
  });

  it("follows a blind transfer to a colleague, and names them", () => {
    const target = "sip:0b9d6c2e@sbc.example.com";
    const transfer = (stage: "asked" | "accepted" | "ringing" | "succeeded" | "failed" | "refused", detail = ""): PhoneEvent => ({
      kind: "transfer", call: 1, target, name: "Megan Bowen", stage, detail,
    });
    let state = play([
      { kind: "incoming", call: 1, from: "sip:caller@example.com", display_name: null },
      { kind: "answered", call: 1 },
      transfer("asked"),
    ]);
    let call = focusCall(state)!;
    expect(transferPending(call)).toBe(true);
    expect(transferText(call.transfer!)).toBe("Transferring to Megan Bowen…");
    state = reduce(state, transfer("ringing"), 4000);
    expect(transferText(focusCall(state)!.transfer!)).toBe("Megan Bowen is ringing…");
    // Busy: the call stays, and another transfer may start.
    state = reduce(state, transfer("failed", "486"), 5000);
    call = focusCall(state)!;
    expect(call.phase).toBe("connected");
    expect(transferPending(call)).toBe(false);
    expect(transferText(call.transfer!)).toBe("Megan Bowen is busy (486). The caller is still with you.");
    const other = reduce(state, transfer("failed", "480"), 5000);
    expect(transferText(focusCall(other)!.transfer!)).toBe("Megan Bowen did not answer (480). The caller is still with you.");
    state = reduce(state, transfer("asked"), 6000);
    state = reduce(state, transfer("succeeded"), 7000);
    state = reduce(state, { kind: "ended", call: 1, cause: "transferred", detail: "Megan Bowen" }, 8000);
    call = focusCall(state)!;
    expect(call.phase).toBe("ended");
    expect(transferText(call.transfer!)).toBe("Transferred to Megan Bowen");
    expect(endText("transferred", "Megan Bowen")).toBe("Transferred (Megan Bowen)");
    // A target typed by hand is shown as its address; a refusal names no one.
    const typed: PhoneEvent = { kind: "transfer", call: 1, target, name: null, stage: "refused", detail: "405" };
    state = reduce(play([{ kind: "dialling", call: 1, to: "sip:a@b" }, { kind: "answered", call: 1 }]), typed, 0);
    expect(transferText(focusCall(state)!.transfer!)).toBe("The other side would not take the transfer (405). The caller is still with you.");
  });

  it("puts a ringing incoming call first, and ignores events for unknown calls", () => {
    let state = play([
      { kind: "dialling", call: 1, to: "sip:a@example.com" },
      { kind: "answered", call: 1 },
      { kind: "incoming", call: 2, from: "sip:b@example.com", display_name: "Bea" },
    ]);
    expect(focusCall(state)!.call).toBe(2);
    const same = reduce(state, { kind: "answered", call: 9 }, 0);
    expect(same).toBe(state);
    state = reduce(state, { kind: "ringing", call: 1 }, 0);
    expect(state.calls[0].phase).toBe("connected");
  });

  it("keeps the last quality figures and the far end's keys", () => {
    const state = play([
      { kind: "incoming", call: 3, from: "sip:c@example.com", display_name: null },
      { kind: "answered", call: 3 },
      { kind: "quality", call: 3, mos: 4.3, loss_percent: 0, jitter_ms: 2.5, rtt_ms: null },
      { kind: "dtmf", call: 3, key: "4" },
      { kind: "dtmf", call: 3, key: "2" },
    ]);
    expect(focusCall(state)!.quality).toEqual({ mos: 4.3, lossPercent: 0, jitterMs: 2.5, rttMs: null });
    expect(focusCall(state)!.keysReceived).toBe("42");
  });

  it("formats durations, quality and reasons for people", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(61_500)).toBe("1:01");
    expect(formatDuration(3_723_000)).toBe("1:02:03");
    expect(qualityLabel(4.3)).toBe("good");
    expect(qualityLabel(3.6)).toBe("fair");
    expect(qualityLabel(2.1)).toBe("poor");
    expect(endText("busy", "486")).toBe("Busy (486)");
    expect(endText("remote", "")).toBe("The other party hung up");
    expect(registrationText({ state: "failed", registrar: "sip:x", reason: "403 Forbidden", retrying: false })).toBe("Not registered: 403 Forbidden");
    expect(registrationText(null)).toBe("Starting…");
  });
});
